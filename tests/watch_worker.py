"""Keep a folder in sync with the fake embedder (`knowledge.watch`), announcing each step of
the commit protocol as crash_worker.py does, and "synced" after each sync.

Run by the kill campaign (kill_campaign.py --watch) as a real subprocess that it kills with
SIGKILL while the folder changes under it.
Usage: python watch_worker.py KB_DIR FOLDER
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import crash_worker  # noqa: E402,F401  (announces the protocol's steps)
from conftest import FakeEmbedder  # noqa: E402
from knowledge.chunking import ChunkerSettings  # noqa: E402
from knowledge.parsing import ParsePool  # noqa: E402
from knowledge.sync import sync  # noqa: E402
from knowledge.watch import watch  # noqa: E402

if __name__ == "__main__":
    kb, folder = Path(sys.argv[1]), Path(sys.argv[2])
    with ParsePool(2) as parser:
        def once(recheck):
            return sync(kb, [folder], embedder=FakeEmbedder(), chunking=ChunkerSettings(20, 5),
                        parser=parser, recheck=recheck, empty_ok=True, log=lambda m: None)

        watch([folder], once, ignore=[kb], on_sync=lambda r: print("synced", flush=True),
              on_error=lambda m: print(f"error {m}", flush=True))
