"""An ASGI app whose start-up always fails (its lifespan raises), for execution.serve's tests."""

from contextlib import asynccontextmanager

from fastapi import FastAPI


@asynccontextmanager
async def _lifespan(app: FastAPI):
    raise RuntimeError("this app refuses to start")
    yield  # pragma: no cover - never reached


app = FastAPI(lifespan=_lifespan)
