"""An ASGI app whose start-up takes as many seconds as the file SLOW_STARTUP_FILE says (none when it is
absent), for execution.serve's reload test: a busy machine's new process that is slow to be ready."""

import asyncio
import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI


@asynccontextmanager
async def _lifespan(app: FastAPI):
    marker = Path(os.environ["SLOW_STARTUP_FILE"])
    if marker.exists():
        await asyncio.sleep(float(marker.read_text()))
    yield


app = FastAPI(lifespan=_lifespan)


@app.get("/health")
def health() -> dict:
    return {"status": "ok", "pid": os.getpid()}
