"""The console channel: the bot in a terminal (channel.py) and outbox delivery to console users (sender.py).

No platform library and no network: the terminal is the conversation, and a table (`console_inbox`) stands in
for the messenger's servers.
"""

CHANNEL = "console"
