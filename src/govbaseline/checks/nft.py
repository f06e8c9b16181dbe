"""Read an nftables table from ``nft -j`` output: the facts the firewall checks assert on."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Rule:
    chain: str
    expr: list[dict[str, Any]]

    @property
    def verdict(self) -> str | None:
        for item in self.expr:
            for key in ("accept", "drop", "reject"):
                if key in item:
                    return key
        return None

    def matches(self, protocol: str, fld: str) -> list[Any]:
        """Right-hand values of ``<protocol> <field> == ...`` matches (flattened sets)."""
        values: list[Any] = []
        for item in self.expr:
            match = item.get("match")
            if not match or match.get("op") not in ("==", "in"):
                continue
            left = match.get("left", {}).get("payload", {})
            if left.get("protocol") == protocol and left.get("field") == fld:
                right = match["right"]
                values += right["set"] if isinstance(right, dict) and "set" in right else [right]
        return values

    def ports(self, protocol: str) -> set[int]:
        out: set[int] = set()
        for value in self.matches(protocol, "dport"):
            if isinstance(value, int):
                out.add(value)
            elif isinstance(value, dict) and "range" in value:
                low, high = value["range"]
                out.update(range(int(low), int(high) + 1))
        return out

    def sources(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        nets = []
        for proto in ("ip", "ip6"):
            for value in self.matches(proto, "saddr"):
                if isinstance(value, str):
                    nets.append(ipaddress.ip_network(value))
                elif isinstance(value, dict) and "prefix" in value:
                    nets.append(ipaddress.ip_network(f"{value['prefix']['addr']}/{value['prefix']['len']}"))
        return nets

    def has(self, key: str) -> bool:
        """Whether any expression of the rule is a ``key`` statement (limit, log, ...)."""
        return any(key in item for item in self.expr)

    def per_source_limit(self) -> str | None:
        """``ip``/``ip6`` when the rule meters sources into a set with an over-rate limit."""
        for item in self.expr:
            update = item.get("set")
            if not isinstance(update, dict) or update.get("op") not in ("add", "update"):
                continue
            field_ = update.get("elem", {}).get("payload", {})
            limits = [s["limit"] for s in update.get("stmt", []) if "limit" in s]
            if field_.get("field") == "saddr" and any(lim.get("inv") for lim in limits):
                return str(field_.get("protocol"))
        return None

    @property
    def text(self) -> str:
        return json.dumps(self.expr, sort_keys=True)


@dataclass
class Table:
    chains: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)

    def policy(self, hook: str) -> str | None:
        for chain in self.chains.values():
            if chain.get("hook") == hook:
                return str(chain.get("policy"))
        return None

    def input_rules(self) -> list[Rule]:
        names = {n for n, c in self.chains.items() if c.get("hook") == "input"}
        return [r for r in self.rules if r.chain in names]


def parse(text: str) -> Table:
    table = Table()
    for item in json.loads(text).get("nftables", []):
        if "chain" in item:
            table.chains[item["chain"]["name"]] = item["chain"]
        elif "rule" in item:
            table.rules.append(Rule(item["rule"]["chain"], item["rule"].get("expr", [])))
    return table
