"""Bounded memory for the web UI's sessions.

Gradio keeps a per-session copy of the page's component state (about 0.2 MB here) for every
browser tab or client that ever sent an event, until the server restarts or the count passes
its capacity. Two bounds keep that flat whatever the traffic: at most UI_SESSIONS_MAX
sessions are kept (the least recently used go first: Gradio's own eviction), and a session
idle for UI_SESSION_IDLE_MINUTES is dropped by a background loop. A dropped session's page
keeps working; only its last answer can no longer be rated (it says to classify again).
"""

from __future__ import annotations

import datetime

import gradio as gr


def expire_idle_sessions(blocks: gr.Blocks, max_idle_s: float) -> int:
    """Drop every session idle longer than `max_idle_s`; returns how many went."""
    holder = getattr(blocks, "state_holder", None)  # set once Gradio serves the Blocks
    if holder is None:
        return 0
    cutoff = datetime.datetime.now() - datetime.timedelta(seconds=max_idle_s)
    with holder.lock:
        idle = [sid for sid, used in holder.time_last_used.items() if used < cutoff]
        for sid in idle:
            holder.session_data.pop(sid, None)
            holder.time_last_used.pop(sid, None)
    return len(idle)
