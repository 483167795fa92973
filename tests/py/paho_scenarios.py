#!/usr/bin/env python3
"""Interoperability scenarios run with Eclipse Paho (paho-mqtt 2.x) against a broker.

Usage: paho_scenarios.py SCENARIO --port PORT [--version 3.1|3.1.1] [--qos N]

Prints "PASS <scenario>" and exits 0 on success; prints the reason and exits 1 on failure.
Every wait is bounded (the whole scenario gives up after about 8 seconds).
Driven by tests/interop_paho.rs.
"""

import argparse
import os
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt

WAIT = 5.0
HOST = "127.0.0.1"


def fail(msg):
    print("FAIL: " + msg, flush=True)
    # os._exit: paho's network threads would keep a plain sys.exit from ending the process.
    os._exit(1)


class Client:
    """A paho client run in its own network thread, with events to wait on."""

    def __init__(self, port, client_id, version, clean_session=True, will=None):
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=version,
            clean_session=clean_session,
        )
        self.port = port
        self.connected = threading.Event()
        self.connack = None
        self.messages = []
        self.cond = threading.Condition()
        self.subscribed = {}
        self.published = set()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        if will is not None:
            topic, payload, qos, retain = will
            self.client.will_set(topic, payload, qos=qos, retain=retain)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connack = (flags.session_present, reason_code)
        self.connected.set()

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.messages.append((msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain)))
            self.cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_code_list, properties):
        with self.cond:
            self.subscribed[mid] = [int(rc.value) if hasattr(rc, "value") else int(rc) for rc in reason_code_list]
            self.cond.notify_all()

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self.cond:
            self.published.add(mid)
            self.cond.notify_all()

    def connect(self):
        self.client.connect(HOST, self.port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(WAIT):
            fail("no CONNACK for %s" % self.client._client_id)
        session_present, rc = self.connack
        if rc != 0:
            fail("connection refused: %s" % rc)
        return session_present

    def subscribe(self, topic, qos):
        rc, mid = self.client.subscribe(topic, qos)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            fail("subscribe failed locally: %s" % rc)
        with self.cond:
            if not self.cond.wait_for(lambda: mid in self.subscribed, WAIT):
                fail("no SUBACK for %s" % topic)
            return self.subscribed[mid]

    def publish(self, topic, payload, qos, retain=False):
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        with self.cond:
            if not self.cond.wait_for(lambda: info.mid in self.published, WAIT):
                fail("publish of %s at QoS %d not completed" % (topic, qos))

    def wait_messages(self, n):
        with self.cond:
            self.cond.wait_for(lambda: len(self.messages) >= n, WAIT)
            return list(self.messages)

    def disconnect(self):
        self.client.disconnect()
        self.client.loop_stop()


def version_of(name):
    return {"3.1": mqtt.MQTTv31, "3.1.1": mqtt.MQTTv311}[name]


def roundtrip(args):
    """QoS N both ways: every message arrives once, in order, at the subscription's QoS."""
    v = version_of(args.version)
    sub = Client(args.port, "paho-sub", v)
    sub.connect()
    granted = sub.subscribe("paho/rt/#", args.qos)
    if granted != [args.qos]:
        fail("granted %s, wanted [%d]" % (granted, args.qos))
    pub = Client(args.port, "paho-pub", v)
    pub.connect()
    sent = [("paho/rt/%d" % i, ("message %d" % i).encode()) for i in range(20)]
    for topic, payload in sent:
        pub.publish(topic, payload, args.qos)
    got = sub.wait_messages(len(sent))
    if [(t, p) for t, p, _, _ in got] != sent:
        fail("received %r" % got)
    if any(q != args.qos or r for _, _, q, r in got):
        fail("wrong QoS or retain flag: %r" % got)
    time.sleep(0.3)
    if len(sub.messages) != len(sent):
        fail("duplicates: %r" % sub.messages)
    pub.disconnect()
    sub.disconnect()


def retained(args):
    """A retained message is stored, replaced, sent with the retain flag, and cleared."""
    v = version_of(args.version)
    pub = Client(args.port, "paho-pub", v)
    pub.connect()
    pub.publish("paho/ret", b"old", 1, retain=True)
    pub.publish("paho/ret", b"new", 1, retain=True)
    sub = Client(args.port, "paho-sub", v)
    sub.connect()
    sub.subscribe("paho/#", 1)
    got = sub.wait_messages(1)
    if got != [("paho/ret", b"new", 1, True)]:
        fail("on subscribe got %r" % got)
    pub.publish("paho/ret", b"live", 1, retain=True)
    got = sub.wait_messages(2)
    if got[1:] != [("paho/ret", b"live", 1, False)]:
        fail("live delivery %r (retain flag must be 0 for an existing subscription)" % got)
    pub.publish("paho/ret", b"", 1, retain=True)
    late = Client(args.port, "paho-late", v)
    late.connect()
    late.subscribe("paho/#", 1)
    time.sleep(0.5)
    if late.messages:
        fail("cleared retained message still delivered: %r" % late.messages)
    for c in (pub, sub, late):
        c.disconnect()


def will(args):
    """A will is published when the client dies (a child process killed), not on disconnect."""
    v = version_of(args.version)
    watcher = Client(args.port, "paho-watcher", v)
    watcher.connect()
    watcher.subscribe("paho/will/#", 2)
    # A polite client: its will must not be published.
    polite = Client(args.port, "paho-polite", v, will=("paho/will/polite", b"no", 1, False))
    polite.connect()
    polite.disconnect()
    # A client in a child process that is killed with SIGKILL: the broker sees the socket close.
    code = (
        "import sys, time, paho.mqtt.client as m\n"
        "c = m.Client(m.CallbackAPIVersion.VERSION2, client_id='paho-dying', protocol=%d)\n"
        "c.will_set('paho/will/dying', b'gone', qos=2, retain=False)\n"
        "c.connect('%s', %d, keepalive=30)\n"
        "c.loop_start()\n"
        "time.sleep(0.5)\n"
        "print('connected', flush=True)\n"
        "time.sleep(30)\n" % (v, HOST, args.port)
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    line = child.stdout.readline()
    if line.strip() != b"connected":
        child.kill()
        fail("child client did not start: %r" % line)
    child.kill()
    child.wait()
    got = watcher.wait_messages(1)
    if got != [("paho/will/dying", b"gone", 2, False)]:
        fail("will: %r" % got)
    time.sleep(0.3)
    if len(watcher.messages) != 1:
        fail("unexpected extra messages: %r" % watcher.messages)
    watcher.disconnect()


def session(args):
    """clean_session=False: subscriptions and QoS 1/2 messages survive a disconnection."""
    v = version_of(args.version)
    sub = Client(args.port, "paho-durable", v, clean_session=False)
    present = sub.connect()
    if present:
        fail("session present on the first connection")
    sub.subscribe("paho/session/#", 2)
    sub.disconnect()
    pub = Client(args.port, "paho-pub", v)
    pub.connect()
    pub.publish("paho/session/0", b"zero", 0)
    pub.publish("paho/session/1", b"one", 1)
    pub.publish("paho/session/2", b"two", 2)
    again = Client(args.port, "paho-durable", v, clean_session=False)
    present = again.connect()
    if v == mqtt.MQTTv311 and not present:
        fail("session present not set when resuming")
    got = again.wait_messages(2)
    want = [("paho/session/1", b"one", 1, False), ("paho/session/2", b"two", 2, False)]
    if got != want:
        fail("queued messages: %r" % got)
    # Still subscribed without subscribing again.
    pub.publish("paho/session/live", b"live", 1)
    got = again.wait_messages(3)
    if got[2:] != [("paho/session/live", b"live", 1, False)]:
        fail("after resume: %r" % got)
    again.disconnect()
    pub.disconnect()


SCENARIOS = {"roundtrip": roundtrip, "retained": retained, "will": will, "session": session}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--version", default="3.1.1", choices=["3.1", "3.1.1"])
    parser.add_argument("--qos", type=int, default=1, choices=[0, 1, 2])
    args = parser.parse_args()
    # A hard stop, whatever happens in the network threads.
    threading.Timer(8.0, lambda: (print("FAIL: scenario timed out", flush=True), os._exit(2))).start()
    SCENARIOS[args.scenario](args)
    print("PASS " + args.scenario, flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
