"""Value parsing as DuckDB SQL expressions, so imports stay vectorised at any size.

Each function takes a SQL expression that yields text and returns a SQL expression for the
parsed value, NULL where the text is not a valid value. ``clean_sql`` must be applied first:
the other functions expect trimmed text with empty strings already turned into NULL.
"""

from __future__ import annotations

from tierwise.data.ingest.fields import FieldType

# Half-width, full-width and non-breaking spaces, BOM, tabs and line breaks.
_TRIM_CHARS = " \t\r\n\u3000\u00a0\ufeff"

# Interaction types users write, by canonical type; anything else is kept lower-cased.
INTERACTION_TYPES: dict[str, tuple[str, ...]] = {
    "visit": ("visit", "拜访", "上门拜访", "上门", "走访", "面谈", "会面"),
    "video": ("video", "video call", "视频", "视频会议", "视频通话"),
    "call": ("call", "phone", "电话", "电话沟通", "来电", "致电"),
    "email": ("email", "e-mail", "mail", "邮件", "电子邮件"),
    "complaint": ("complaint", "投诉", "客诉"),
    "survey": ("survey", "调查", "回访", "满意度调查", "问卷"),
    "event": ("event", "活动", "会议", "展会"),
}

# What users write (lower-cased) -> canonical type, for one value at a time (tierwise log,
# playbook channels); imports map whole columns in SQL from the same table.
INTERACTION_ALIASES: dict[str, str] = {
    alias.lower(): kind for kind, names in INTERACTION_TYPES.items() for alias in names}


def canonical_interaction_type(text: str) -> str | None:
    """The canonical type of what a user wrote (拜访 → visit), None when it is none."""
    return INTERACTION_ALIASES.get(text.strip().lower())


# A Chinese date, optionally followed by a time part: 2025-03-07, 2025/3/7, 2025.3.7,
# 2025年3月7日, 2025-03-07 14:30:00, 2025-03-07T14:30:00Z.
_DATE_PATTERN = r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})[日号]?(?:[ T].*)?$"
# Thousands separators, currency signs and spaces inside an amount.
_AMOUNT_NOISE = " ,，¥￥$元\u00a0\u3000"
_GROUPED_AMOUNT = r"[^0-9,，]*[0-9]{1,3}([,，][0-9]{3})+([.][0-9]*)?[^0-9,，]*"
_ISO_DATE_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
_ISO_DATETIME_GLOB = _ISO_DATE_GLOB + "[ T]*"
_COMPACT_DATE_PATTERN = r"^(\d{4})(\d{2})(\d{2})$"
# Excel stores dates as days since 1899-12-30; five digits covers 1927-2173 without
# mistaking a bare year or a short number for a date.
_EXCEL_SERIAL_PATTERN = r"^\d{5}(\.\d+)?$"


def sql_string(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """A SQL identifier, quoted so any header (Chinese, spaces, quotes) is safe."""
    return '"' + name.replace('"', '""') + '"'


def clean_sql(text: str) -> str:
    """Trimmed text, NULL when empty."""
    # Trimming a set of Unicode spaces is slow in DuckDB; most values need no trimming, and
    # finding those that do by their first character and their last bytes costs half what a
    # regular expression does (trimming a value with no such edge changes nothing).
    codes = ", ".join(str(ord(char)) for char in _TRIM_CHARS)
    ends = " OR ".join(f"ends_with({text}, {sql_string(char)})" for char in _TRIM_CHARS)
    return (
        f"(CASE WHEN ascii({text}) IN ({codes}) OR {ends} "
        f"THEN NULLIF(trim({text}, {sql_string(_TRIM_CHARS)}), '') "
        f"ELSE NULLIF({text}, '') END)"
    )


def amount_sql(text: str) -> str:
    """A DOUBLE from ``1234.5``, ``¥1,234.50``, ``￥1，234``, ``1.2万``, ``3亿``, ``(500)``,
    ``12,000元``, ``-500``; NULL when not an amount."""
    # Plain string functions, not regexes: this runs on every formatted amount.
    unsigned = f"replace({text}, '−', '-')"  # a typographic minus is still a minus
    core = f"translate({unsigned}, {sql_string(_AMOUNT_NOISE)}, '')"
    for currency in ("RMB", "rmb", "CNY", "cny"):
        core = f"replace({core}, '{currency}', '')"
    negative = (
        f"((starts_with({core}, '(') OR starts_with({core}, '（')) "
        f"AND (ends_with({core}, ')') OR ends_with({core}, '）')))"
    )
    bare = f"trim({core}, '()（）')"
    multiplier = (
        f"(CASE WHEN ends_with({bare}, '万亿') THEN 1e12 "
        f"WHEN ends_with({bare}, '万') THEN 1e4 "
        f"WHEN ends_with({bare}, '亿') THEN 1e8 "
        f"WHEN ends_with({bare}, '千') THEN 1e3 ELSE 1 END)"
    )
    number = f"TRY_CAST(rtrim({bare}, '万亿千') AS DOUBLE)"
    value = f"({number} * {multiplier} * (CASE WHEN {negative} THEN -1 ELSE 1 END))"
    plain = f"TRY_CAST({text} AS DOUBLE)"  # most amounts are plain numbers: skip the regexes
    # Thousands separators only between groups of three digits: 1,234,567 but not 1,2,3.
    grouped = (
        f"(NOT (contains({text}, ',') OR contains({text}, '，')) "
        f"OR regexp_full_match({text}, {sql_string(_GROUPED_AMOUNT)}))"
    )
    # TRY_CAST accepts 'inf' and 'nan', which are never amounts.
    return (
        f"(CASE WHEN isfinite({plain}) THEN {plain} "
        f"WHEN {plain} IS NULL AND {grouped} AND isfinite({value}) THEN {value} END)"
    )


def date_sql(text: str) -> str:
    """A DATE from the formats Chinese exports use, 8-digit dates and Excel serials."""
    dashed = f"TRY_CAST(regexp_replace({text}, {sql_string(_DATE_PATTERN)}, '\\1-\\2-\\3') AS DATE)"
    compact_pattern = sql_string(_COMPACT_DATE_PATTERN)
    compact = f"TRY_CAST(regexp_replace({text}, {compact_pattern}, '\\1-\\2-\\3') AS DATE)"
    serial = f"(DATE '1899-12-30' + CAST(floor(TRY_CAST({text} AS DOUBLE)) AS INTEGER))"
    # ISO dates (and ISO timestamps) are the common case: a cheap GLOB, no regexes. DuckDB's
    # own date cast is too lenient ('25-3-7', 'epoch') to use without the GLOB.
    return (
        "(CASE "
        f"WHEN {text} GLOB {sql_string(_ISO_DATE_GLOB)} "
        f"OR {text} GLOB {sql_string(_ISO_DATETIME_GLOB)} THEN TRY_CAST(left({text}, 10) AS DATE) "
        f"WHEN regexp_matches({text}, {sql_string(_DATE_PATTERN)}) THEN {dashed} "
        f"WHEN regexp_matches({text}, {sql_string(_COMPACT_DATE_PATTERN)}) THEN {compact} "
        f"WHEN regexp_matches({text}, {sql_string(_EXCEL_SERIAL_PATTERN)}) THEN {serial} "
        "END)"
    )


def satisfaction_sql(text: str) -> str:
    """A DOUBLE from 1 to 5 (``4``, ``4.5``, ``4分``, ``4星``); NULL otherwise."""
    number = f"TRY_CAST(rtrim({text}, '分星 ') AS DOUBLE)"
    return f"(CASE WHEN {number} BETWEEN 1 AND 5 THEN {number} END)"


def interaction_type_sql(text: str) -> str:
    """The canonical interaction type for a Chinese or English name; others lower-cased."""
    lowered = f"lower({text})"
    whens = " ".join(
        f"WHEN {lowered} IN ({', '.join(sql_string(name) for name in names)}) "
        f"THEN {sql_string(canonical)}"
        for canonical, names in INTERACTION_TYPES.items()
    )
    return f"(CASE {whens} ELSE {lowered} END)"


def parse_sql(field_type: FieldType, text: str) -> str:
    """The parsed value of cleaned text for a field of the given type."""
    if field_type == "amount":
        return amount_sql(text)
    if field_type == "date":
        return date_sql(text)
    if field_type == "satisfaction":
        return satisfaction_sql(text)
    if field_type == "interaction_type":
        return interaction_type_sql(text)
    return text


def sql_type(field_type: FieldType) -> str:
    """The column type a parsed field is stored as."""
    return {"amount": "DOUBLE", "date": "DATE", "satisfaction": "DOUBLE"}.get(field_type, "VARCHAR")


def problem_sql(field_type: FieldType, field_name: str, text: str) -> str:
    """The plain-words reason a non-empty value is rejected, as a SQL text expression."""
    quoted = f"'''' || {text} || ''''"
    if field_type == "amount":
        return f"'not an amount: ' || {quoted}"
    if field_type == "date":
        return f"'not a date: ' || {quoted}"
    if field_type == "satisfaction":
        return f"'{field_name} must be 1–5: ' || {quoted}"
    return "'not a valid value: ' || " + quoted
