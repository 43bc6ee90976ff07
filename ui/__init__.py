"""Gradio user interface: layout and callbacks only; all work goes through the service."""
