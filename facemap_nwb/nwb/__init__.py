"""The NWB layer: results and recordings to NWB and back. It knows nothing of how results were made."""
