"""The website chat widget: a channel adapter over the same engine as the bots (DESIGN.md §3), reached over
HTTP (routes in web/widget/). A resident is anonymous: a random token kept by their browser, stored by us
only as a hash (the chat id). `channel.create_channel` is its entry in `bots/runner.py`."""

CHANNEL = "widget"
