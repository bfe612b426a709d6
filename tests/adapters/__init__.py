"""Adapters: real aiogram, python-telegram-bot and vkbottle against the fake platform servers, in-process."""
