"""Profiling on a device over SSH: copy the model, run `edgelite profile --json` there, clean up.

Uses the system's OpenSSH client (ssh, scp) with key authentication and BatchMode, so it never
prompts; every call is an argv list with a timeout and a checked exit code. The device needs
only edgelite's wheel with the `[litert]` (or `[tflite]`) extra, never TensorFlow.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shlex
import subprocess
from dataclasses import dataclass, field

from edgelite.runtime.errors import EdgeliteError
from edgelite.runtime.interpreter.profiler import ProfileResult
from edgelite.runtime.modelfile.files import describe
from edgelite.scale.errors import DeviceUnreachableError, RemoteError

# user@host[:port]: a conservative user and host name (or a bracketed IPv6 address), never a leading '-'.
TARGET = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9._-]{0,63}@)?(?:[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]+\])"
                    r"(?::[0-9]{1,5})?")
VERSION = re.compile(r"edgelite, version [0-9A-Za-z.+!_-]{1,40}")
INSTALL_ON_DEVICE = ("build the wheel (pip wheel --no-deps . -w dist/), copy it there and "
                     "pip install 'edgelite-<version>-py3-none-any.whl[litert]' ([tflite] on older Pi OS / Coral)")


@dataclass(frozen=True)
class Remote:
    """``user@host[:port]`` and how to reach edgelite there."""

    target: str
    edgelite: str = "edgelite"
    identity: str | None = None
    options: tuple[str, ...] = field(default_factory=tuple)
    timeout: float = 600.0

    def __post_init__(self):
        if not TARGET.fullmatch(self.target or ""):
            raise RemoteError(f"{describe(self.target)}: not a device address; give user@host[:port] (letters, digits, "
                              "'.', '-' and '_'; no leading '-')")

    @property
    def host(self) -> str:
        return self.target.rsplit(":", 1)[0] if self._port else self.target

    @property
    def _port(self) -> str | None:
        tail = self.target.rsplit(":", 1)
        return tail[1] if len(tail) == 2 and tail[1].isdigit() else None

    def _common(self, port_flag: str) -> list[str]:
        args = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15"]
        if self._port:
            args += [port_flag, self._port]
        if self.identity:
            args += ["-i", self.identity]
        for option in self.options:
            args += ["-o", option]
        return args

    def _run(self, argv: list[str], what: str, stdin=None) -> subprocess.CompletedProcess[str]:
        try:
            raw = subprocess.run(argv, capture_output=True, timeout=self.timeout, check=False, stdin=stdin)
            done = subprocess.CompletedProcess(raw.args, raw.returncode, raw.stdout.decode(errors="replace"),
                                               raw.stderr.decode(errors="replace"))
        except subprocess.TimeoutExpired:
            raise DeviceUnreachableError(f"{self.target}: {what} took longer than {self.timeout:.0f} s") from None
        except OSError as exc:
            raise RemoteError(f"cannot run {argv[0]} ({exc.strerror or exc}); install the OpenSSH client") from None
        if done.returncode == 255:  # ssh's own failure: connection, authentication, host key
            detail = " ".join(done.stderr.split())[-300:]
            raise DeviceUnreachableError(f"{self.target}: cannot connect over SSH ({detail})")
        return done

    def ssh(self, command: str, what: str, stdin=None) -> subprocess.CompletedProcess[str]:
        """Runs ``command`` on the device; ``--`` ends ssh's options, so the host can never be read as one."""
        return self._run(["ssh", *self._common("-p"), "--", self.host, command], what, stdin)

    def check(self) -> str:
        """edgelite's version on the device; a RemoteError saying what to install if it has none."""
        done = self.ssh(f"{shlex.quote(self.edgelite)} --version", "checking edgelite")
        if done.returncode != 0:
            raise RemoteError(f"{self.target}: edgelite is not installed there ({self.edgelite}: "
                              f"{' '.join(done.stderr.split())[-160:] or 'exit ' + str(done.returncode)}); "
                              f"install it on the device: {INSTALL_ON_DEVICE}")
        answer = done.stdout.strip()
        if not VERSION.fullmatch(answer):
            raise RemoteError(f"{self.target}: {self.edgelite} --version answered {answer[:80]!r}, not edgelite's "
                              "version; is --remote-edgelite (or the device's edgelite key) edgelite's command?")
        return answer

    def profile(self, model_path: str, *, threads: int | None, runs: int, warmup: int, delegate: str = "auto",
                duration_s: float | None = None) -> ProfileResult:
        """Copies the model to a fresh temporary folder on the device, profiles it there, removes it."""
        folder = self.ssh("mktemp -d", "making a temporary folder").stdout.strip()
        if not folder.startswith("/"):
            raise RemoteError(f"{self.target}: could not make a temporary folder (mktemp -d printed {folder!r})")
        try:
            remote_model = f"{folder}/model.tflite"  # a fixed name: the local one never reaches a shell or scp
            self._copy(model_path, remote_model)
            result = self._profile_there(remote_model, threads, runs, warmup, delegate, duration_s)
            return dataclasses.replace(result, model=model_path)  # the device's copy was temporary
        finally:
            self._clean(folder)

    def _copy(self, model_path: str, remote_model: str) -> None:
        """The model goes over the ssh connection's stdin (``cat > file`` there): a local name with a colon or
        a leading '-' is never parsed by scp as a host or an option."""
        try:
            source = open(model_path, "rb")  # noqa: SIM115 - closed below, after the copy
        except OSError as exc:
            raise RemoteError(f"{describe(model_path)}: cannot read ({exc.strerror or exc})") from None
        with source:
            copy = self.ssh(f"cat > {shlex.quote(remote_model)}", "copying the model", stdin=source)
        if copy.returncode != 0:
            raise RemoteError(f"{self.target}: copying {describe(model_path)} failed: "
                              f"{' '.join(copy.stderr.split())[-200:]}")

    def _clean(self, folder: str) -> None:
        """Removes the copy; a failure here never hides the error that is already on its way."""
        import sys
        try:
            self.ssh(f"rm -rf {shlex.quote(folder)}", "cleaning up")
        except RemoteError:
            if sys.exc_info()[0] is None:
                raise

    def _profile_there(self, remote_model, threads, runs, warmup, delegate, duration_s) -> ProfileResult:
        argv = [self.edgelite, "profile", remote_model, "--json", "--runs", str(runs), "--warmup", str(warmup),
                "--delegate", delegate, "--no-isolate"]
        if threads:
            argv += ["--threads", str(threads)]
        if duration_s:
            argv += ["--duration", str(duration_s)]
        # `timeout` on the device ends edgelite there too when we give up waiting (it would go on, orphaned).
        limit = max(1, int(self.timeout) - 5)
        command = f"timeout -k 5 {limit} " + " ".join(shlex.quote(a) for a in argv)
        done = self.ssh(command, "profiling")
        if done.returncode != 0:
            message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
            raise RemoteError(f"{self.target}: edgelite profile failed there: {message}")
        try:
            data = json.loads(done.stdout)
            result = ProfileResult.from_dict(data["results"][0])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise RemoteError(f"{self.target}: unexpected output from edgelite profile ({exc})") from None
        return result

    def profile_each(self, models, counts, **options) -> tuple[tuple, tuple[dict, ...], bool]:
        """Every model at every thread count: the results, an error row for each that failed (the rest go on),
        and whether the device stopped answering (then nothing more is tried: its other models cannot run)."""
        results, errors = [], []
        for model in models:
            for n in counts:
                try:
                    results.append(self.profile(model, threads=n, **options))
                except EdgeliteError as exc:
                    errors.append({"model": model, "threads": n, "error": str(exc)})
                    if isinstance(exc, DeviceUnreachableError):
                        return tuple(results), tuple(errors), True
        return tuple(results), tuple(errors), False

    def profile_many(self, models, counts, **options):
        """``profile_each`` after checking the device runs edgelite, as one report."""
        from edgelite.runtime.interpreter.profiler import ProfileReport
        self.check()
        results, errors, _ = self.profile_each(models, counts, **options)
        return ProfileReport(results, errors)
