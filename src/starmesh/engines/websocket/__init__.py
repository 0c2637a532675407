"""WebSocket: the UI gateway and its live dashboard."""

from starmesh.engines.websocket.engine import WebSocketConfig, WebSocketEngine
from starmesh.engines.websocket.sessions import ClientSession

__all__ = ["ClientSession", "WebSocketConfig", "WebSocketEngine"]
