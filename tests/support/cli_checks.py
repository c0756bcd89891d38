"""Checks on the pgolf binary for the command-line tests: run it, record pass/fail lines,
and assert that bad input gives one sentence on stderr and a non-zero exit."""
import subprocess


class CliChecks:
    def __init__(self, pgolf, timeout=600):
        self.pgolf, self.timeout, self.failures = pgolf, timeout, []

    def check(self, cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            self.failures.append(what)
        return cond

    def run(self, *args):
        return subprocess.run([self.pgolf, *args], capture_output=True, text=True,
                              timeout=self.timeout)

    def expect_error(self, what, args, needle):
        """pgolf ARGS must exit non-zero with one line `pgolf: ...` containing needle."""
        r = self.run(*args)
        lines = r.stderr.strip().splitlines()
        self.check(r.returncode != 0 and len(lines) == 1 and lines[0].startswith("pgolf: ")
                   and needle in lines[0],
                   f"{what}: exit {r.returncode}, stderr {r.stderr.strip()[-300:]!r}")

    def finish(self, name):
        print(f"{name}: {len(self.failures)} failed" if self.failures
              else f"{name}: all checks passed")
        return 1 if self.failures else 0
