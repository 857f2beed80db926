"""A child process of the tests of hostile user code: flows that swallow cancellation (the
default scenario) or a sync hook that never returns (`hung-hook`); then `anyio.run` must
return and the process exit. Usage: `_hostile_child.py BACKEND [hung-hook]`."""

from __future__ import annotations

import sys
import threading

import anyio

from runtime import Runtime, flow

GRACE = 0.2


async def swallow() -> None:
    while True:
        try:  # noqa: SIM105 - the hostile code as users write it
            await anyio.sleep(0.05)
        except BaseException:
            pass


@flow(timeout_seconds=0.2)
async def swallows_with_timeout() -> None:
    await swallow()


@flow
async def swallows(i: int) -> None:
    await swallow()


@flow
async def polite(i: int) -> None:
    await anyio.sleep_forever()


async def main() -> None:
    async with Runtime(cancel_grace=GRACE) as rt:
        assert (await (await rt.submit(swallows_with_timeout)).wait()).name == "TimedOut"
    print("timed-out", flush=True)
    async with Runtime(cancel_grace=GRACE) as rt:
        for i in range(50):
            await rt.submit(swallows if i % 10 == 0 else polite, i)
        await anyio.wait_all_tasks_blocked()
        await rt.shutdown(cancel=True)
    print("shut-down", flush=True)
    with anyio.CancelScope() as app:
        async with Runtime(cancel_grace=GRACE) as rt:
            for i in range(50):
                await rt.submit(swallows if i % 10 == 0 else polite, i)
            app.cancel()
    print("app-cancelled", flush=True)


def never_returns(*args: object) -> None:
    threading.Event().wait()


@flow(on_completion=[never_returns])
async def hooked() -> int:
    return 1


async def hung_hook() -> None:
    async with Runtime(hook_timeout=0.2) as rt:
        assert (await (await rt.submit(hooked)).wait()).is_completed()
    print("hook-abandoned", flush=True)


if __name__ == "__main__":
    scenario = hung_hook if sys.argv[2:] == ["hung-hook"] else main
    anyio.run(scenario, backend=sys.argv[1])
    print("returned", flush=True)
