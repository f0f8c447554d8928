#!/usr/bin/env python3
"""Groups a `perf report --no-children --sort dso,symbol --stdio` listing by
what each symbol belongs to, so two profiles compare as a handful of shares.

Usage: perf report ... | python3 infra/perf-groups.py
The first matching rule wins; the order matters (SigV4 before "aws_").
"""
import re
import sys

RULES = [
    ("kernel: idle and scheduler", r"\[k\].*(schedule|idle|switch_to|finish_task|pick_next|enqueue|dequeue|try_to_wake|futex|update_curr|update_load|hrtimer|tick_)"),
    ("kernel: page faults and zeroing", r"\[k\].*(clear_page|page_fault|do_anonymous|handle_mm|folio|rmqueue|zap_|madvise|lru_)"),
    ("kernel: TCP and syscalls", r"\[k\]"),
    ("allocator", r"(_mi_|mi_|malloc|free|realloc|calloc|__rust_alloc|__rust_dealloc|__rdl_)"),
    ("SigV4 and SHA-256", r"(aws_sigv4|sha2::|sha256|hmac|Sha256)"),
    ("AWS SDK pipeline", r"(aws_smithy|aws_sdk|aws_runtime|aws_types|aws_credential|ConfigBag|RuntimeComponents|orchestrator)"),
    ("hyper and HTTP", r"(hyper|http::|httparse|h2::|http_body|tower|axum)"),
    ("tokio and futures", r"(tokio|futures|mio::|parking_lot|crossbeam)"),
    ("memcpy and memset", r"(memcpy|memmove|memset|memcmp)"),
    ("WebSocket (tungstenite)", r"(tungstenite)"),
    ("Roomcast", r"(roomcast_|roomcast::)"),
    ("serde", r"(serde)"),
]


def main() -> None:
    totals: dict[str, float] = {}
    line_re = re.compile(r"^\s+([0-9.]+)%\s+(\S+)\s+(.*)$")
    for line in sys.stdin:
        m = line_re.match(line)
        if not m:
            continue
        share, symbol = float(m.group(1)), m.group(3)
        text = symbol.strip()
        group = next((name for name, rule in RULES if re.search(rule, text)), "other")
        totals[group] = totals.get(group, 0.0) + share
    for name, share in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"{share:6.1f} %  {name}")


if __name__ == "__main__":
    main()
