"""Inbox collector: CSV files dropped into a folder are loaded and moved to done/ or failed/ with a report."""

from collectors.inbox.watcher import InboxWatcher, process_file, watch_inbox

__all__ = ["InboxWatcher", "process_file", "watch_inbox"]
