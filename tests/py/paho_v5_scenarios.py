#!/usr/bin/env python3
"""MQTT 5.0 interoperability scenarios run with Eclipse Paho (paho-mqtt 2.x, protocol=MQTTv5).

Usage: paho_v5_scenarios.py SCENARIO --port PORT

Prints "PASS <scenario>" and exits 0 on success; prints the reason and exits 1 on failure.
Every wait is bounded (the whole scenario gives up after about 9 seconds).
Driven by tests/interop_paho_v5.rs.
"""

import argparse
import os
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

WAIT = 4.0
HOST = "127.0.0.1"


def fail(msg):
    print("FAIL: " + msg, flush=True)
    # os._exit: paho's network threads would keep a plain sys.exit from ending the process.
    os._exit(1)


def props(kind, **values):
    p = Properties(kind)
    for k, v in values.items():
        setattr(p, k, v)
    return p


class Client:
    """A paho MQTT 5 client run in its own network thread, with events to wait on."""

    def __init__(self, port, client_id, version=mqtt.MQTTv5):
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version
        )
        self.version = version
        self.port = port
        self.connected = threading.Event()
        self.connack = None
        self.messages = []
        self.cond = threading.Condition()
        self.subscribed = {}
        self.published = {}
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connack = (flags.session_present, reason_code, properties)
        self.connected.set()

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.messages.append(msg)
            self.cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_code_list, properties):
        with self.cond:
            self.subscribed[mid] = [int(rc.value) if hasattr(rc, "value") else int(rc) for rc in reason_code_list]
            self.cond.notify_all()

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self.cond:
            self.published[mid] = int(reason_code.value) if hasattr(reason_code, "value") else int(reason_code)
            self.cond.notify_all()

    def connect(self, clean_start=True, properties=None, expect_rc=0):
        if self.version == mqtt.MQTTv5:
            self.client.connect(HOST, self.port, keepalive=30, clean_start=clean_start, properties=properties)
        else:
            self.client.connect(HOST, self.port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(WAIT):
            fail("no CONNACK for %s" % self.client._client_id)
        session_present, rc, _ = self.connack
        if int(rc.value if hasattr(rc, "value") else rc) != expect_rc:
            fail("CONNACK reason %s, wanted %d" % (rc, expect_rc))
        return session_present

    def subscribe(self, topic, options, properties=None):
        if self.version == mqtt.MQTTv5:
            rc, mid = self.client.subscribe(topic, options=options, properties=properties)
        else:
            rc, mid = self.client.subscribe(topic, options)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            fail("subscribe failed locally: %s" % rc)
        with self.cond:
            if not self.cond.wait_for(lambda: mid in self.subscribed, WAIT):
                fail("no SUBACK for %s" % topic)
            return self.subscribed[mid]

    def publish(self, topic, payload, qos, retain=False, properties=None):
        """Publishes and waits for the flow to end; returns the PUBACK/PUBREC reason code."""
        if self.version == mqtt.MQTTv5:
            info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        else:
            info = self.client.publish(topic, payload, qos=qos, retain=retain)
        with self.cond:
            if not self.cond.wait_for(lambda: info.mid in self.published, WAIT):
                fail("publish of %s at QoS %d not completed" % (topic, qos))
            return self.published[info.mid]

    def wait_messages(self, n, wait=WAIT):
        with self.cond:
            self.cond.wait_for(lambda: len(self.messages) >= n, wait)
            return list(self.messages)

    def disconnect(self, properties=None):
        self.client.disconnect(properties=properties)
        self.client.loop_stop()


def plain(msgs):
    return [(m.topic, bytes(m.payload)) for m in msgs]


def connack(args):
    """CONNACK properties as paho sees them; Assigned Client Identifier for an empty id."""
    c = Client(args.port, "")
    c.connect()
    _, _, p = c.connack
    got = (getattr(p, "TopicAliasMaximum", None), getattr(p, "ReceiveMaximum", None))
    if got != (10, 20):
        fail("Topic Alias Maximum / Receive Maximum: %r" % (got,))
    assigned = getattr(p, "AssignedClientIdentifier", "")
    if not assigned.startswith("auto-") or len(assigned) != 41:
        fail("Assigned Client Identifier %r" % assigned)
    c.disconnect()
    # A bad Authentication Method: reason 0x8C.
    bad = Client(args.port, "paho-auth")
    bad.connect(properties=props(PacketTypes.CONNECT, AuthenticationMethod="SCRAM-SHA-1"), expect_rc=0x8C)


def properties(args):
    """Request / response with every application property passed through, user properties in
    order; Message Expiry counted down; PUBACK 0x10 when nobody listens."""
    responder = Client(args.port, "paho-responder")
    responder.connect()
    responder.subscribe("paho5/req", SubscribeOptions(qos=1))
    requester = Client(args.port, "paho-requester")
    requester.connect()
    requester.subscribe("paho5/resp/+", SubscribeOptions(qos=1))
    user = [("z", "1"), ("a", "2"), ("z", "3")]
    rc = requester.publish(
        "paho5/req",
        b'{"q": 1}',
        1,
        properties=props(
            PacketTypes.PUBLISH,
            PayloadFormatIndicator=1,
            ContentType="application/json",
            ResponseTopic="paho5/resp/1",
            CorrelationData=b"\x00\x01id",
            UserProperty=user,
            MessageExpiryInterval=60,
        ),
    )
    if rc != 0:
        fail("PUBACK reason %d with a subscriber" % rc)
    got = responder.wait_messages(1)
    if len(got) != 1:
        fail("request not delivered")
    req = got[0]
    p = req.properties
    have = (
        getattr(p, "PayloadFormatIndicator", None),
        getattr(p, "ContentType", None),
        getattr(p, "ResponseTopic", None),
        getattr(p, "CorrelationData", None),
        getattr(p, "UserProperty", None),
    )
    want = (1, "application/json", "paho5/resp/1", b"\x00\x01id", user)
    if have != want:
        fail("request properties %r, wanted %r" % (have, want))
    expiry = getattr(p, "MessageExpiryInterval", None)
    if expiry is None or not 58 <= expiry <= 60:
        fail("Message Expiry Interval %r" % expiry)
    responder.publish(
        p.ResponseTopic, b"answer", 1, properties=props(PacketTypes.PUBLISH, CorrelationData=p.CorrelationData)
    )
    got = requester.wait_messages(1)
    if plain(got) != [("paho5/resp/1", b"answer")] or got[0].properties.CorrelationData != b"\x00\x01id":
        fail("response %r" % plain(got))
    rc = requester.publish("paho5/nobody", b"x", 1)
    if rc != 0x10:
        fail("PUBACK reason %#x without subscribers, wanted 0x10" % rc)
    requester.disconnect()
    responder.disconnect()


def subopts(args):
    """No Local, Retain As Published, Retain Handling, Subscription Identifiers."""
    pub = Client(args.port, "paho-retainer")
    pub.connect()
    pub.publish("paho5/so/r", b"stored", 1, retain=True)
    c = Client(args.port, "paho-subopts")
    c.connect()
    # Retain Handling 2: no retained message; No Local: not our own messages.
    c.subscribe("paho5/so/+", SubscribeOptions(qos=1, noLocal=True, retainHandling=2),
                properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=11))
    # Retain As Published on another filter, with its own identifier.
    c.subscribe("paho5/so/#", SubscribeOptions(qos=1, retainAsPublished=True, retainHandling=1),
                properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=12))
    got = c.wait_messages(1)
    if [(m.topic, bytes(m.payload), bool(m.retain)) for m in got] != [("paho5/so/r", b"stored", True)]:
        fail("on subscribe: %r" % plain(got))
    if got[0].properties.SubscriptionIdentifier != [12]:
        fail("retained message identifiers %r" % got[0].properties.SubscriptionIdentifier)
    # Our own message: only through the filter without No Local.
    c.publish("paho5/so/own", b"own", 1)
    pub.publish("paho5/so/live", b"live", 1, retain=True)
    got = c.wait_messages(3)
    time.sleep(0.3)
    got = list(c.messages)
    own = [m for m in got if m.topic == "paho5/so/own"]
    live = [m for m in got if m.topic == "paho5/so/live"]
    if len(own) != 1 or sorted(own[0].properties.SubscriptionIdentifier) != [12]:
        fail("own message %r" % [(m.topic, m.properties) for m in own])
    # Two matching subscriptions: midge sends one copy with both identifiers, Mosquitto one
    # copy per subscription (the standard allows both).
    ids = sorted(i for m in live for i in m.properties.SubscriptionIdentifier)
    if not 1 <= len(live) <= 2 or ids != [11, 12]:
        fail("live message %r" % [(m.topic, m.properties.SubscriptionIdentifier) for m in live])
    if not any(m.retain and 12 in m.properties.SubscriptionIdentifier for m in live):
        fail("Retain As Published: RETAIN 0 on a retained live message")
    c.disconnect()
    pub.disconnect()


def shared(args):
    """$share/group/filter between a v5 and a v3.1.1 paho client: each message once."""
    a = Client(args.port, "paho-share-5")
    a.connect()
    a.subscribe("$share/paho/paho5/sh/#", SubscribeOptions(qos=1))
    b = Client(args.port, "paho-share-311", version=mqtt.MQTTv311)
    b.connect()
    b.subscribe("$share/paho/paho5/sh/#", 1)
    pub = Client(args.port, "paho-share-pub")
    pub.connect()
    sent = [("paho5/sh/%d" % i, b"m%d" % i) for i in range(10)]
    for topic, payload in sent:
        pub.publish(topic, payload, 1)
    deadline = time.time() + WAIT
    while len(a.messages) + len(b.messages) < len(sent) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    got_a, got_b = plain(a.messages), plain(b.messages)
    if sorted(got_a + got_b) != sorted(sent):
        fail("shared deliveries a=%r b=%r" % (got_a, got_b))
    if not got_a or not got_b:
        fail("one member got nothing: a=%r b=%r" % (got_a, got_b))
    for c in (a, b, pub):
        c.disconnect()


def session(args):
    """Session Expiry Interval and Clean Start: queued messages after a reconnect."""
    p = props(PacketTypes.CONNECT, SessionExpiryInterval=60)
    sub = Client(args.port, "paho-durable5")
    if sub.connect(clean_start=True, properties=p):
        fail("session present on a clean start")
    sub.subscribe("paho5/session/#", SubscribeOptions(qos=2))
    sub.disconnect()
    pub = Client(args.port, "paho-pub5")
    pub.connect()
    pub.publish("paho5/session/1", b"one", 1)
    pub.publish("paho5/session/2", b"two", 2)
    again = Client(args.port, "paho-durable5")
    if not again.connect(clean_start=False, properties=p):
        fail("session present not set when resuming")
    got = again.wait_messages(2)
    if plain(got) != [("paho5/session/1", b"one"), ("paho5/session/2", b"two")]:
        fail("queued messages: %r" % plain(got))
    # DISCONNECT with Session Expiry 0 ends the session.
    again.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
    time.sleep(0.2)
    last = Client(args.port, "paho-durable5")
    if last.connect(clean_start=False, properties=p):
        fail("session still present after DISCONNECT with Session Expiry 0")
    last.disconnect()
    pub.disconnect()


def will_delay(args):
    """A will with Will Delay Interval 1 s and properties, from a killed client."""
    watcher = Client(args.port, "paho-watcher5")
    watcher.connect()
    watcher.subscribe("paho5/will/#", SubscribeOptions(qos=1))
    code = (
        "import time, paho.mqtt.client as m\n"
        "from paho.mqtt.properties import Properties\n"
        "from paho.mqtt.packettypes import PacketTypes\n"
        "c = m.Client(m.CallbackAPIVersion.VERSION2, client_id='paho-dying5', protocol=m.MQTTv5)\n"
        "wp = Properties(PacketTypes.WILLMESSAGE)\n"
        "wp.WillDelayInterval = 1\n"
        "wp.ContentType = 'text/plain'\n"
        "wp.UserProperty = [('why', 'killed')]\n"
        "c.will_set('paho5/will/dying', b'gone', qos=1, retain=False, properties=wp)\n"
        "cp = Properties(PacketTypes.CONNECT)\n"
        "cp.SessionExpiryInterval = 10\n"
        "c.connect('%s', %d, keepalive=30, properties=cp)\n"
        "c.loop_start()\n"
        "time.sleep(0.5)\n"
        "print('connected', flush=True)\n"
        "time.sleep(30)\n" % (HOST, args.port)
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    line = child.stdout.readline()
    if line.strip() != b"connected":
        child.kill()
        fail("child client did not start: %r" % line)
    child.kill()
    child.wait()
    killed = time.time()
    time.sleep(0.5)
    if watcher.messages:
        fail("will sent before its delay: %r" % plain(watcher.messages))
    got = watcher.wait_messages(1)
    elapsed = time.time() - killed
    if plain(got) != [("paho5/will/dying", b"gone")]:
        fail("will: %r" % plain(got))
    if elapsed < 0.8:
        fail("will after %.2f s, delay is 1 s" % elapsed)
    p = got[0].properties
    if getattr(p, "ContentType", None) != "text/plain" or getattr(p, "UserProperty", None) != [("why", "killed")]:
        fail("will properties %r" % p)
    watcher.disconnect()


def mixed(args):
    """v3.1.1 publisher -> v5 subscriber and v5 publisher (with properties) -> v3.1.1."""
    v5 = Client(args.port, "paho-mixed-5")
    v5.connect()
    v5.subscribe("paho5/mixed/to5", SubscribeOptions(qos=2))
    v3 = Client(args.port, "paho-mixed-311", version=mqtt.MQTTv311)
    v3.connect()
    v3.subscribe("paho5/mixed/to3", 2)
    v3.publish("paho5/mixed/to5", b"from 3.1.1", 2)
    v5.publish("paho5/mixed/to3", b"from 5", 2,
               properties=props(PacketTypes.PUBLISH, ContentType="text/plain", UserProperty=[("k", "v")]))
    got5 = v5.wait_messages(1)
    got3 = v3.wait_messages(1)
    if plain(got5) != [("paho5/mixed/to5", b"from 3.1.1")] or got5[0].qos != 2:
        fail("v5 subscriber got %r" % plain(got5))
    if getattr(got5[0].properties, "UserProperty", None) or getattr(got5[0].properties, "ContentType", None):
        fail("properties out of nowhere: %r" % got5[0].properties)
    if plain(got3) != [("paho5/mixed/to3", b"from 5")] or got3[0].qos != 2:
        fail("v3.1.1 subscriber got %r" % plain(got3))
    v5.disconnect()
    v3.disconnect()


def topic_alias(args):
    """paho publishes with a Topic Alias, then with the alias alone."""
    sub = Client(args.port, "paho-alias-sub")
    sub.connect()
    sub.subscribe("paho5/alias/#", SubscribeOptions(qos=1))
    pub = Client(args.port, "paho-alias-pub")
    pub.connect()
    pub.publish("paho5/alias/long/topic", b"1", 1, properties=props(PacketTypes.PUBLISH, TopicAlias=3))
    pub.publish("", b"2", 1, properties=props(PacketTypes.PUBLISH, TopicAlias=3))
    got = sub.wait_messages(2)
    if plain(got) != [("paho5/alias/long/topic", b"1"), ("paho5/alias/long/topic", b"2")]:
        fail("aliased messages: %r" % plain(got))
    pub.disconnect()
    sub.disconnect()


def topic_alias_out(args):
    """The broker sets up topic aliases towards a client with a Topic Alias Maximum.

    paho-mqtt 2.x passes aliased PUBLISHes on as they are (empty topic, TopicAlias property)
    without resolving them, so the application keeps the alias table, as the standard has
    the receiver do."""
    sub = Client(args.port, "paho-alias-out-sub")
    sub.connect(properties=props(PacketTypes.CONNECT, TopicAliasMaximum=2))
    sub.subscribe("paho5/out/#", SubscribeOptions(qos=1))
    pub = Client(args.port, "paho-alias-out-pub")
    pub.connect()
    sent = ["paho5/out/a", "paho5/out/b", "paho5/out/c"] * 2
    for i, topic in enumerate(sent):
        pub.publish(topic, b"%d" % i, 1)
    got = sub.wait_messages(len(sent))
    aliases = {}
    resolved, wire = [], []
    for m in got:
        alias = getattr(m.properties, "TopicAlias", None)
        topic = m.topic
        wire.append((topic, alias))
        if alias is not None:
            if topic:
                aliases[alias] = topic
            elif alias in aliases:
                topic = aliases[alias]
            else:
                fail("alias %d used before it was set up: %r" % (alias, wire))
        resolved.append((topic, bytes(m.payload)))
    want = [(t, b"%d" % i) for i, t in enumerate(sent)]
    if resolved != want:
        fail("resolved messages %r, wanted %r" % (resolved, want))
    # Two aliases at most (the client's maximum), first come first served; the third topic
    # always in full.
    want_wire = [
        ("paho5/out/a", 1), ("paho5/out/b", 2), ("paho5/out/c", None),
        ("", 1), ("", 2), ("paho5/out/c", None),
    ]
    if wire != want_wire:
        fail("topics and aliases on the wire %r, wanted %r" % (wire, want_wire))
    pub.disconnect()
    sub.disconnect()


SCENARIOS = {
    "connack": connack,
    "properties": properties,
    "subopts": subopts,
    "shared": shared,
    "session": session,
    "will_delay": will_delay,
    "mixed": mixed,
    "topic_alias": topic_alias,
    "topic_alias_out": topic_alias_out,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # A hard stop, whatever happens in the network threads.
    threading.Timer(9.0, lambda: (print("FAIL: scenario timed out", flush=True), os._exit(2))).start()
    SCENARIOS[args.scenario](args)
    print("PASS " + args.scenario, flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
