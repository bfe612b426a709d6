"""Engine, dialogs and domain: the real engine over a database, no platform library, no process."""
