"""How the fuzz children judge one step on a hostile input: "ok", "one line" (an edgelite error on one line,
as the CLI prints it), "multi-line: ..." or "traceback: ..." (anything else escaped). Imported by the child
processes of tests/runtime/test_structure_fuzz.py and test_hostile_decoders.py (run from the checkout)."""


def outcome(step) -> str:
    from edgelite.runtime import EdgeliteError
    try:
        step()
        return "ok"
    except EdgeliteError as exc:
        return "one line" if "\n" not in str(exc) else "multi-line: " + str(exc)[:200]
    except Exception as exc:  # noqa: BLE001 - what the fuzz looks for: anything that is not edgelite's own error
        return f"traceback: {type(exc).__name__}: {exc}"[:200]
