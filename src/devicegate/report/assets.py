"""The report's inline stylesheet (no external resources, ever; the charts are SVG drawn by
`devicegate.charts`)."""

STYLE = "".join(
    "body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;"
    "color:#1d2433;padding:0 1rem}"
    "h1{font-size:1.6rem;margin:0 0 .3rem}"
    "h2{font-size:1.15rem;margin:2rem 0 .6rem;border-bottom:1px solid #dde}"
    ".cards{display:flex;gap:.8rem;flex-wrap:wrap}"
    ".card{background:#f3f5fa;border-radius:8px;padding:.7rem 1rem;min-width:8rem}"
    ".card b{display:block;font-size:1.4rem}"
    ".card span{color:#566}"
    "table{border-collapse:collapse;width:100%;margin:.6rem 0}"
    "caption{text-align:left;color:#566;padding:.2rem 0}"
    "th,td{border-bottom:1px solid #e4e7ef;padding:.25rem .5rem;text-align:left;"
    "vertical-align:top}"
    "td:nth-child(n+2){font-variant-numeric:tabular-nums}"
    ".chart{width:100%;min-height:60px}"
    ".empty{color:#566}"
    "code{background:#f3f5fa;padding:0 .3rem}"
    "svg text{font:11px system-ui,sans-serif;fill:#1d2433}"
)
