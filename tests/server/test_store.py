"""The chat store on disk: atomic 0600 files in a 0700 folder, chats by notebook (latest,
named, new), renames of notebooks and folders, a notebook moved outside Jupyter found by its
metadata id (a copy does not take the original's chats), bounded history, ids checked."""

from __future__ import annotations

import json
import os

import pytest

from jupyter_devstral.server.store import ConversationStore, write_atomic


def test_files_are_private_and_written_whole(tmp_path):
    store = ConversationStore(tmp_path / "chats")
    record = store.resolve("a.ipynb")
    assert oct((tmp_path / "chats").stat().st_mode & 0o777) == "0o700"
    for path in (tmp_path / "chats").iterdir():
        assert oct(path.stat().st_mode & 0o777) == "0o600", path
    record["turns"].append({"id": "t1", "request": "why?", "parts": []})
    store.save(record)
    assert store.load(record["id"])["title"] == "why?"
    # a write that fails half-way leaves the old file and no temp file behind
    target = tmp_path / "chats" / f"{record['id']}.json"
    with pytest.raises(TypeError):
        write_atomic(target, {"bad": object()} | {"x": float("nan")} | {1j: 1})
    assert json.loads(target.read_text())["title"] == "why?"
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]


def test_latest_named_and_new_chats(tmp_path):
    store = ConversationStore(tmp_path)
    first = store.resolve("a.ipynb")
    assert store.resolve("a.ipynb")["id"] == first["id"]  # latest
    assert store.resolve("a.ipynb", new=True)["id"] == first["id"]  # it is empty: reused
    first["turns"].append({"id": "t1", "request": "q"})
    store.save(first)
    second = store.resolve("a.ipynb", new=True)
    assert second["id"] != first["id"]
    assert store.resolve("a.ipynb")["id"] == second["id"]
    assert store.resolve("a.ipynb", conversation=first["id"])["id"] == first["id"]
    assert [c["id"] for c in store.chats("a.ipynb")] == [first["id"], second["id"]]
    assert store.resolve("b.ipynb", conversation=first["id"])["id"] != first["id"]  # not b's
    assert store.load("../../etc/passwd") is None


def test_policies_are_per_notebook(tmp_path):
    store = ConversationStore(tmp_path)
    assert store.policies("a.ipynb") == {"edit": "ask", "run": "ask"}
    store.set_policies("a.ipynb", {"run": "auto", "edit": "yolo"})
    assert ConversationStore(tmp_path).policies("a.ipynb") == {"edit": "ask", "run": "auto"}
    assert store.policies("b.ipynb") == {"edit": "ask", "run": "ask"}


def test_chats_follow_renames_of_notebooks_and_folders(tmp_path):
    store = ConversationStore(tmp_path)
    a = store.resolve("work/a.ipynb")["id"]
    b = store.resolve("work/sub/b.ipynb")["id"]
    other = store.resolve("workshop.ipynb")["id"]
    assert store.rename("work/a.ipynb", "work/a2.ipynb") == [a]
    assert store.resolve("work/a2.ipynb")["id"] == a
    assert sorted(store.rename("/work/", "done")) == sorted([a, b])
    again = ConversationStore(tmp_path)  # as after a restart
    assert again.resolve("done/a2.ipynb")["id"] == a
    assert again.resolve("done/sub/b.ipynb")["id"] == b
    assert again.load(b)["notebook"] == "done/sub/b.ipynb"
    assert again.resolve("workshop.ipynb")["id"] == other


def test_a_moved_notebook_is_found_by_its_id_a_copy_is_not(tmp_path):
    existing = {"copy-src.ipynb"}
    store = ConversationStore(tmp_path, exists=lambda path: path in existing)
    moved = store.resolve("old.ipynb", notebook_id="nb-1")["id"]
    assert store.resolve("new.ipynb", notebook_id="nb-1")["id"] == moved  # old.ipynb is gone
    kept = store.resolve("copy-src.ipynb", notebook_id="nb-2")["id"]
    assert store.resolve("copy.ipynb", notebook_id="nb-2")["id"] != kept  # the original exists


def test_history_is_bounded(tmp_path):
    store = ConversationStore(tmp_path, max_chats=3, keep_sent=2)
    first = store.resolve("a.ipynb")
    first["turns"] = [{"id": f"t{i}", "request": "q", "sent": [{"x": i}]} for i in range(5)]
    store.save(first)
    kept = store.load(first["id"])["turns"]
    assert [bool(t["sent"]) for t in kept] == [False, False, False, True, True]
    assert kept[0]["sentDropped"] is True
    ids = [first["id"]]
    for _ in range(4):
        record = store.resolve("a.ipynb", new=True)
        record["turns"] = [{"id": "t", "request": "q"}]
        store.save(record)
        ids.append(record["id"])
    assert [c["id"] for c in store.chats("a.ipynb")] == ids[::-1][:3]
    assert not os.path.exists(tmp_path / f"{first['id']}.json")


def _with_proposals(store: ConversationStore, notebook: str = "a.ipynb") -> dict:
    record = store.resolve(notebook)
    proposal = {"source": "rm()", "action": "propose", "note": "deletes", "effects": ["rm"]}
    record["turns"].append(
        {"id": "t1", "mode": "fix", "proposals": [dict(proposal), dict(proposal)]}
    )
    store.save(record)
    return record


def test_a_proposal_is_claimed_once_and_a_reload_shows_it(tmp_path):
    store = ConversationStore(tmp_path)
    chat = _with_proposals(store)["id"]
    assert store.claim_proposal(chat, "t1", 0) == (True, "running", "")
    claimed, state, why = store.claim_proposal(chat, "t1", 0)  # another tab, or a reload
    assert (claimed, state) == (False, "running") and why
    assert store.claim_proposal(chat, "t1", 1)[0] is True  # its sibling is its own
    # a fresh store (a restarted server) reads the claim from disk
    again = ConversationStore(tmp_path)
    assert again.resolve("a.ipynb")["turns"][0]["proposals"][0]["state"] == "running"
    assert again.claim_proposal(chat, "t1", 0)[0] is False
    for turn, index in (("t1", 2), ("t1", -1), ("nope", 0)):
        assert store.claim_proposal(chat, turn, index)[:2] == (False, None)
    assert store.claim_proposal("0" * 16, "t1", 0)[:2] == (False, None)


def test_a_save_never_takes_a_proposal_state_back(tmp_path):
    store = ConversationStore(tmp_path)
    stale = _with_proposals(store)  # a tab's copy from before the claim
    chat = stale["id"]
    assert store.claim_proposal(chat, "t1", 0)[0]
    store.save(json.loads(json.dumps(stale)))  # no state: the stored one stays
    assert store.load(chat)["turns"][0]["proposals"][0]["state"] == "running"
    ran = json.loads(json.dumps(stale))
    ran["turns"][0]["proposals"][0].update(state="ran", result="ran [3]")
    store.save(ran)  # running -> ran
    assert store.load(chat)["turns"][0]["proposals"][0]["result"] == "ran [3]"
    for later in ("running", None, "failed"):  # ran is final
        copy = json.loads(json.dumps(stale))
        copy["turns"][0]["proposals"][0]["state"] = later
        store.save(copy)
        assert copy["turns"][0]["proposals"][0]["state"] == "ran"  # the caller's copy too
        stored = store.load(chat)["turns"][0]["proposals"][0]
        assert (stored["state"], stored["result"]) == ("ran", "ran [3]")
    assert "state" not in store.load(chat)["turns"][0]["proposals"][1]  # never clicked


def test_claims_from_many_threads_let_one_through(tmp_path):
    import threading

    store = ConversationStore(tmp_path)
    record = _with_proposals(store)
    wins: list[bool] = []

    def claim() -> None:
        wins.append(store.claim_proposal(record["id"], "t1", 0)[0])

    def save() -> None:  # stale copies written meanwhile
        store.save(json.loads(json.dumps(record)))

    threads = [threading.Thread(target=f) for _ in range(8) for f in (claim, save)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins.count(True) == 1
    assert store.load(record["id"])["turns"][0]["proposals"][0]["state"] == "running"
