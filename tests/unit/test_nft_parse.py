"""The checks' reading of ``nft -j`` output."""

from __future__ import annotations

import json

from govbaseline.checks import nft

SAMPLE = {"nftables": [
    {"chain": {"family": "inet", "table": "govbaseline", "name": "input", "hook": "input", "policy": "drop"}},
    {"rule": {"chain": "input", "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                   "right": {"prefix": {"addr": "10.0.0.0", "len": 8}}}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}},
        {"accept": None}]}},
    {"rule": {"chain": "input", "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                   "right": {"set": [80, {"range": [8000, 8002]}]}}}, {"accept": None}]}},
    {"rule": {"chain": "input", "expr": [
        {"set": {"op": "add", "elem": {"payload": {"protocol": "ip6", "field": "saddr"}}, "set": "@f",
                 "stmt": [{"limit": {"rate": 30, "per": "second", "inv": True}}]}}, {"drop": None}]}},
]}


def test_parse_reads_policy_ports_sources_and_meters():
    table = nft.parse(json.dumps(SAMPLE))
    assert table.policy("input") == "drop"
    assert table.policy("forward") is None
    ssh, web, meter = table.input_rules()
    assert ssh.ports("tcp") == {22}
    assert [str(n) for n in ssh.sources()] == ["10.0.0.0/8"]
    assert web.ports("tcp") == {80, 8000, 8001, 8002}
    assert web.sources() == []
    assert meter.per_source_limit() == "ip6"
    assert ssh.per_source_limit() is None
