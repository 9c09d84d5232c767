"""Schemathesis hooks for Usher (scripts/fuzz-api.sh sets SCHEMATHESIS_HOOKS to this module).

Every command needs an `Idempotency-Key`, and a key reused with another body is 422 by
design (docs/contract.md section 2). A fuzzer that repeats the one key its schema example
shows would test nothing but that, so each generated request gets a fresh key; requests
that leave the header out or break it on purpose (negative cases) keep what was generated.
"""

import uuid

import schemathesis


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers if case.headers is not None else {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and 1 <= len(key) <= 255 and all("!" <= c <= "~" for c in key):
        headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4()}"
        case.headers = headers


def _tolerate_cpython_ast_bug():
    """Hypothesis names each filter's lambda by parsing its source file with `ast.parse`.

    On CPython 3.11 that parse can raise `SystemError: AST constructor recursion depth
    mismatch` (a CPython bug) when it runs deep in a call stack, which
    schemathesis reports as an internal error of the run, not of the API. The name is only
    a label for the strategy's repr, so the label falls back to hypothesis's own
    "unknown" form instead.
    """
    from hypothesis.internal import lambda_sources

    describe = lambda_sources._lambda_description

    def tolerant(f, *args, **kwargs):
        try:
            return describe(f, *args, **kwargs)
        except SystemError:
            return "lambda: <unknown>"

    lambda_sources._lambda_description = tolerant


_tolerate_cpython_ast_bug()
