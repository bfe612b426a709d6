"""The city's HTTP doors — health checks today; the dashboard, Open311 and the website widget are adapters
here, beside the messenger webhooks on the same aiohttp server (DESIGN.md §13). Like `bots/`, this package
receives its ports from the composition root (`bots.app.App`) and never imports `storage/`."""
