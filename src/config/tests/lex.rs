//! The nom grammar of `lex`: examples of each parser, then a differential check against the
//! hand-written reader it replaced (kept here as the oracle, since that one was verified
//! against Mosquitto 2.0.22) on many random inputs.

use super::super::lex::{self, Line, TopicFields};

#[test]
fn lines_and_their_numbers() {
    let ls: Vec<&[u8]> = lex::lines(b"a\n\nb\r\nc").collect();
    assert_eq!(ls, [&b"a"[..], b"", b"b\r", b"c"]);
    assert_eq!(lex::lines(b"").count(), 0);
    assert_eq!(lex::lines(b"x\n").count(), 1);
    assert_eq!(lex::lines(b"\n\n").count(), 2);
}

#[test]
fn classify_comments_blanks_and_crs() {
    assert_eq!(lex::classify(b""), Line::Skip);
    assert_eq!(lex::classify(b"# x"), Line::Skip);
    assert_eq!(lex::classify(b"\rabc"), Line::Skip);
    assert_eq!(lex::classify(b"\xff#"), Line::Text(b"\xff#"));
    assert_eq!(lex::classify(b" # x"), Line::Text(b" # x"));
    assert_eq!(lex::classify(b"a b\r\r"), Line::Text(b"a b"));
    assert_eq!(lex::classify(b"a\rb\r"), Line::Text(b"a\rb"));
}

#[test]
fn tokens_are_single_space_separated() {
    assert_eq!(lex::token("a b"), Ok(("b", "a")));
    assert_eq!(lex::token("   a   b"), Ok(("  b", "a")));
    assert_eq!(lex::token("a\tb c"), Ok(("c", "a\tb")));
    assert!(lex::token("   ").is_err());
    assert!(lex::token("").is_err());
    assert_eq!(lex::rest_of_line("  x "), Ok(("", "  x ")));
    assert!(lex::rest_of_line("").is_err());
    assert_eq!(lex::rest_after_blanks(" \t x "), Ok(("", "x ")));
    assert!(lex::rest_after_blanks(" \t").is_err());
    assert_eq!(lex::trimmed(" \x0b a b\t\r\n"), "a b");
    assert_eq!(lex::trimmed(" \t "), "");
}

#[test]
fn atoi_like_c() {
    for (s, want) in [
        ("12", 12),
        ("  -7x", -7),
        ("+3", 3),
        ("abc", 0),
        ("", 0),
        ("\x0b\t9", 9),
        ("- 1", 0),
        ("99999999999", i32::MAX),
        ("-99999999999", i32::MIN),
    ] {
        assert_eq!(lex::atoi(s), want, "{s:?}");
    }
    assert_eq!(lex::atol("99999999999"), 99_999_999_999);
    assert_eq!(lex::atol("9".repeat(40).as_str()), i64::MAX);
}

#[test]
fn booleans() {
    assert_eq!(lex::boolean("true"), Ok(true));
    assert_eq!(lex::boolean("1"), Ok(true));
    assert_eq!(lex::boolean("false"), Ok(false));
    assert_eq!(lex::boolean("0"), Ok(false));
    for bad in ["truex", "10", "True", "", "yes"] {
        assert_eq!(lex::boolean(bad), Err(lex::LexError::NotBool), "{bad:?}");
    }
}

#[test]
fn durations_take_the_last_character_as_unit() {
    assert_eq!(lex::duration("2d"), Ok((2, 86400)));
    assert_eq!(lex::duration("1w"), Ok((1, 7 * 86400)));
    assert_eq!(lex::duration("3m"), Ok((3, 30 * 86400)));
    assert_eq!(lex::duration("1y"), Ok((1, 365 * 86400)));
    assert_eq!(lex::duration("5h"), Ok((5, 3600)));
    assert_eq!(lex::duration("2xd"), Ok((2, 86400)));
    assert_eq!(lex::duration("d"), Ok((0, 86400)));
    assert_eq!(lex::duration("hd"), Ok((0, 86400)));
    assert_eq!(lex::duration("5"), Err(lex::LexError::BadDuration));
    assert_eq!(lex::duration("5D"), Err(lex::LexError::BadDuration));
    assert_eq!(lex::duration(""), Err(lex::LexError::BadDuration));
}

#[test]
fn host_port_splits_at_the_last_colon() {
    assert_eq!(lex::host_port("h"), ("h", None));
    assert_eq!(lex::host_port("h:1"), ("h", Some("1")));
    assert_eq!(lex::host_port("[::1]:1884"), ("[::1]", Some("1884")));
    assert_eq!(lex::host_port("::1"), (":", Some("1")));
    assert_eq!(lex::host_port("h:"), ("h", Some("")));
    assert_eq!(lex::host_port(":"), ("", Some("")));
    assert_eq!(lex::host_port(""), ("", None));
}

#[test]
fn sha1_hex() {
    let hex = "0123456789abcdefABCDEF0123456789abcdef01";
    let d = lex::sha1_hex(hex).expect("valid");
    assert_eq!(d[0], 0x01);
    assert_eq!(d[19], 0x01);
    assert!(lex::sha1_hex(&hex[1..]).is_err());
    assert!(lex::sha1_hex(&format!("{hex}0")).is_err());
    assert!(lex::sha1_hex(&hex.replace('a', "g")).is_err());
}

#[test]
fn topic_fields() {
    let f = |s| lex::topic_fields(s).map(|(_, f)| f);
    assert!(f("").is_err());
    assert_eq!(
        f("# both 2 local/ remote/"),
        Ok(TopicFields {
            pattern: "#",
            direction: Some("both"),
            qos: Some("2"),
            local_prefix: Some("local/"),
            remote_prefix: Some("remote/"),
        })
    );
    let t = f("\"\" in 0 \"\" c/d extra").expect("parses");
    assert_eq!(
        (t.pattern, t.local_prefix, t.remote_prefix),
        ("\"\"", None, Some("c/d"))
    );
    // A comment as qos or local prefix ends the line.
    let t = f("a out #1 b/ c/").expect("parses");
    assert_eq!(
        (t.qos, t.local_prefix, t.remote_prefix),
        (Some("#1"), None, None)
    );
    let t = f("a out 1 #b c/").expect("parses");
    assert_eq!((t.local_prefix, t.remote_prefix), (None, None));
    let t = f("a out 1 b/ #c").expect("parses");
    assert_eq!((t.local_prefix, t.remote_prefix), (Some("b/"), None));
    assert_eq!(lex::direction("BoTh"), Some(super::super::Direction::Both));
    assert_eq!(lex::direction("inn"), None);
}

/// The hand-written reader `lex` replaced, as the oracle.
mod oracle {
    pub fn skip(raw: &[u8]) -> Option<&[u8]> {
        if matches!(raw.first(), None | Some(b'#' | b'\r')) {
            return None;
        }
        let mut raw = raw;
        while let [rest @ .., b'\r' | b'\n'] = raw {
            raw = rest;
        }
        (!raw.is_empty()).then_some(raw)
    }

    pub fn next_token(rest: &mut &str) -> Option<String> {
        let s = rest.trim_start_matches(' ');
        match s.find(' ') {
            _ if s.is_empty() => {
                *rest = "";
                None
            }
            Some(i) => {
                *rest = &s[i + 1..];
                Some(s[..i].to_string())
            }
            None => {
                *rest = "";
                Some(s.to_string())
            }
        }
    }

    pub fn atol(s: &str) -> i64 {
        let s = s.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b');
        let (neg, digits) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let mut v: i64 = 0;
        for b in digits.bytes().take_while(u8::is_ascii_digit) {
            v = v.saturating_mul(10).saturating_add(i64::from(b - b'0'));
        }
        if neg {
            -v
        } else {
            v
        }
    }

    pub fn duration(token: &str) -> Option<(i32, i64)> {
        let unit = token.chars().last()?;
        let mult = match unit {
            'h' => 3600,
            'd' => 86400,
            'w' => 86400 * 7,
            'm' => 86400 * 30,
            'y' => 86400 * 365,
            _ => return None,
        };
        let n = atol(&token[..token.len() - unit.len_utf8()]);
        Some((
            n.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
            mult,
        ))
    }

    /// `(pattern, direction, qos, local, remote)` as `parse_topic` read them.
    pub type Topic = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );

    pub fn topic(mut rest: &str) -> Option<Topic> {
        let t = &mut rest;
        let pattern = next_token(t)?;
        let (mut dir, mut qos, mut lp, mut rp) = (None, None, None, None);
        let prefix = |p: &str| (p != "\"\"" && !p.starts_with('#')).then(|| p.to_string());
        if let Some(d) = next_token(t) {
            dir = Some(d);
            if let Some(q) = next_token(t) {
                if q.starts_with('#') {
                    *t = "";
                }
                qos = Some(q);
                if let Some(l) = next_token(t) {
                    if l.starts_with('#') {
                        *t = "";
                    }
                    lp = prefix(&l);
                    rp = next_token(t).and_then(|r| prefix(&r));
                }
            }
        }
        Some((pattern, dir, qos, lp, rp))
    }
}

/// Random text over the characters the grammar cares about.
fn random_text(state: &mut u64, max_len: usize) -> String {
    const ALPHABET: &[&str] = &[
        " ", " ", " ", "\t", "\r", "\n", "#", ":", "\"", "\"\"", "0", "1", "2", "7", "-", "+", "a",
        "h", "d", "w", "m", "y", "\x0b", "é", "/", "true",
    ];
    let mut next = || {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    };
    let len = (next() % (max_len as u64 + 1)) as usize;
    (0..len)
        .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
        .collect()
}

#[test]
fn nom_grammar_matches_the_hand_written_reader() {
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    for _ in 0..20_000 {
        let s = random_text(&mut state, 14);
        let raw = s.as_bytes();
        let want = oracle::skip(raw).map_or(Line::Skip, Line::Text);
        if !raw.contains(&b'\n') {
            assert_eq!(lex::classify(raw), want, "classify {s:?}");
        }
        let mut rest = s.as_str();
        let mut t = super::super::values::Tokens::new(&s);
        loop {
            let want = oracle::next_token(&mut rest);
            assert_eq!(t.next_token().map(str::to_string), want, "tokens of {s:?}");
            if want.is_none() {
                break;
            }
        }
        assert_eq!(lex::atol(&s), oracle::atol(&s), "atol {s:?}");
        assert_eq!(
            lex::duration(&s).ok(),
            oracle::duration(&s),
            "duration {s:?}"
        );
        let want = s
            .rsplit_once(':')
            .map_or((s.as_str(), None), |(h, p)| (h, Some(p)));
        assert_eq!(lex::host_port(&s), want, "host_port {s:?}");
        let want = s.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b');
        assert_eq!(lex::trimmed(&s), want, "trimmed {s:?}");
        let got = lex::topic_fields(&s).ok().map(|(_, f)| {
            let own = |o: Option<&str>| o.map(str::to_string);
            let (d, q) = (own(f.direction), own(f.qos));
            (
                f.pattern.to_string(),
                d,
                q,
                own(f.local_prefix),
                own(f.remote_prefix),
            )
        });
        assert_eq!(got, oracle::topic(&s), "topic {s:?}");
    }
}
