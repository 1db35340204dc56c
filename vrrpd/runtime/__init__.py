"""Glue: builds the engine from config, one asyncio loop, executes actions."""
