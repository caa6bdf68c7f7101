"""Errors of the image encoders (loading, converting, gating, running)."""

from __future__ import annotations

from provisioning.errors import ProvisionError


class EncoderError(ProvisionError):
    """An encoder that cannot be loaded or run (missing directory, device, hub, wrong model kind)."""


class HubUnavailableError(EncoderError):
    """A hub source whose model cannot be had: the hub is unreachable or offline and nothing is cached."""


class ConversionError(EncoderError):
    """A model that cannot be exported, quantised or converted for the runtime its encoder declares."""
