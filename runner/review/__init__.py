"""Stage 3, review and promote: results tables, the HTML comparison report, and winners
re-rendered on another tier."""
