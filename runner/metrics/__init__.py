"""The audience's verdict: ad-platform results brought back to the videos that earned them
(export for ads, import of platform reports, statistics). See docs/ad-platforms.md."""
