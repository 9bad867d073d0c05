"""``ascbench plugins``: every plugin found, whether it loaded, what it registered."""

from __future__ import annotations


def command(args) -> int:
    from ascbench.formatting import render_table, wrap_text
    from ascbench.registry import get_registry

    rows = []
    for st in get_registry().status.values():
        registered = ", ".join(st.registered)
        rows.append((st.name, st.source, "ok" if st.ok else "FAILED", registered if st.ok else st.error))
    print(render_table(rows, ["plugin", "module", "status", "registered / error"], wide=args.wide))
    print("\n" + wrap_text("$ASCBENCH_STRICT_PLUGINS=1 makes plugin failures fatal; $ASCBENCH_PLUGINS=a,b loads only "
                           "those plugins."))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("plugins", help="every plugin found, whether it loaded, and what it registered")
    p.add_argument("--wide", action="store_true", help="every cell whole on one line, however wide the table gets")
