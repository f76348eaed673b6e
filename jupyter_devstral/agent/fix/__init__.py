"""The fix loop: candidates, how they are asked for and judged, and the honest label."""
