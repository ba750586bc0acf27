"""What the admin is looking at: filters, search, sort and page, validated.

A `SessionView` is built only from checked values, whatever a client sends;
it round-trips through URL query parameters so views can be bookmarked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from active_sessions.columns import COLUMNS_BY_KEY, FILTER_KEYS, PAGE_SIZES

DEFAULT_SORT = "started_at"
MAX_SEARCH_LENGTH = 200
MAX_FILTER_VALUES = 200
MAX_FILTER_VALUE_LENGTH = 200
MAX_PAGE = 1_000_000
# Ids are 32-bit integers on PostgreSQL: a larger one exists nowhere and fails there.
MAX_MEMBER_ID = 2**31 - 1
# The URL parameters of a view: one per filter, the search, the sort and the page.
VIEW_PARAMS = (*FILTER_KEYS, "q", "sort", "page", "size")


class InvalidView(ValueError):
    """A client sent a view that does not exist (unknown column, bad page...)."""


def _clean_values(key: str, values) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise InvalidView(f"filter {key!r} takes a list of values")
    if len(values) > MAX_FILTER_VALUES:
        raise InvalidView(f"filter {key!r} takes at most {MAX_FILTER_VALUES} values")
    cleaned: list[str] = []
    for value in values:
        if not value or not _is_text(value, MAX_FILTER_VALUE_LENGTH):
            raise InvalidView(f"filter {key!r}: bad value {value!r}")
        # ASCII digits only: str.isdigit() also takes '²', which int() refuses.
        if key == "member" and not (value.isascii() and value.isdigit() and int(value) <= MAX_MEMBER_ID):
            raise InvalidView(f"filter 'member' takes member ids, not {value!r}")
        if value not in cleaned:
            cleaned.append(value)
    return tuple(sorted(cleaned))


@dataclass(frozen=True)
class SessionView:
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    search: str = ""
    sort: str = DEFAULT_SORT
    descending: bool = True
    page: int = 0
    page_size: int = 50

    def __post_init__(self) -> None:
        if not isinstance(self.filters, Mapping):
            raise InvalidView("filters must be a mapping")
        filters = {}
        for key, values in self.filters.items():
            if key not in FILTER_KEYS:
                raise InvalidView(f"unknown filter {key!r}")
            cleaned = _clean_values(key, values)
            if cleaned:
                filters[key] = cleaned
        object.__setattr__(self, "filters", dict(sorted(filters.items())))
        if not _is_text(self.search, MAX_SEARCH_LENGTH):
            raise InvalidView(_search_problem(self.search))
        object.__setattr__(self, "search", self.search.strip())
        if not isinstance(self.sort, str) or self.sort not in COLUMNS_BY_KEY:
            raise InvalidView(f"unknown sort column {self.sort!r}")
        if not isinstance(self.descending, bool):
            raise InvalidView("descending must be true or false")
        if isinstance(self.page, bool) or not isinstance(self.page, int) or not 0 <= self.page <= MAX_PAGE:
            raise InvalidView(f"bad page {self.page!r}")
        if type(self.page_size) is not int or self.page_size not in PAGE_SIZES:  # not 50.0, not True
            raise InvalidView(f"page size must be one of {PAGE_SIZES}")

    def with_filter(self, key: str, values) -> SessionView:
        filters = dict(self.filters)
        filters[key] = values
        return replace(self, filters=filters, page=0)

    def without_filters(self) -> SessionView:
        return replace(self, filters={}, search="", page=0)

    def to_query_params(self) -> dict[str, str]:
        """URL parameters: one comma-free entry per filter (values joined by `|`, a `|` or `\\`
        inside a value escaped with `\\`)."""
        params: dict[str, str] = {key: _join_values(values) for key, values in self.filters.items()}
        if self.search:
            params["q"] = self.search
        params["sort"] = f"-{self.sort}" if self.descending else self.sort
        if self.page:
            params["page"] = str(self.page + 1)
        if self.page_size != 50:
            params["size"] = str(self.page_size)
        return params

    @classmethod
    def from_query_params(cls, params: Mapping[str, str], *, strict: bool = False) -> SessionView:
        """Read a view from URL parameters. Unknown or broken parts fall back to defaults
        (a bookmark typed by hand still opens), or with `strict` raise InvalidView."""

        def refuse(problem: str) -> None:
            if strict:
                raise InvalidView(problem)

        if strict and (unknown := sorted(set(params) - set(VIEW_PARAMS))):
            refuse(f"unknown parameters {unknown}")
        filters = {}
        for key in FILTER_KEYS:
            raw = params.get(key)
            if isinstance(raw, str) and raw:
                values = tuple(value for value in _split_values(raw) if value)
                try:
                    filters[key] = _clean_values(key, values)
                except InvalidView as invalid:
                    refuse(str(invalid))
            elif raw is not None:
                refuse(f"filter {key!r}: bad value {raw!r}")
        search = params.get("q") or ""
        if not _is_text(search, MAX_SEARCH_LENGTH):
            refuse(_search_problem(search))
            search = ""
        sort_param = params.get("sort")
        if not isinstance(sort_param, str) or not sort_param:  # e.g. a list: `?sort=a&sort=b`
            if sort_param is not None:
                refuse(f"bad sort {sort_param!r}")
            sort_param = f"-{DEFAULT_SORT}"
        descending = sort_param.startswith("-")
        sort = sort_param.lstrip("-")
        if sort not in COLUMNS_BY_KEY:
            refuse(f"unknown sort column {sort!r}")
            sort, descending = DEFAULT_SORT, True
        page = _int_param(params.get("page"), default=1, allowed=range(1, MAX_PAGE + 1), refuse=refuse) - 1
        page_size = _int_param(params.get("size"), default=50, allowed=PAGE_SIZES, refuse=refuse)
        return cls(
            filters=filters,
            search=search,
            sort=sort,
            descending=descending,
            page=page,
            page_size=page_size,
        )


def _int_param(raw, *, default: int, allowed, refuse) -> int:
    # ASCII digits only ('²'.isdigit() is true), and few enough for int() to take.
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 20 and int(raw) in allowed:
        return int(raw)
    if raw is not None:
        refuse(f"bad number {raw!r}")
    return default


def _search_problem(search) -> str:
    if isinstance(search, str) and "\x00" in search:
        return "search must not contain NUL characters"
    return f"search must be text of at most {MAX_SEARCH_LENGTH} characters"


def _is_text(value, max_length: int) -> bool:
    # PostgreSQL refuses text with NUL characters.
    return isinstance(value, str) and len(value) <= max_length and "\x00" not in value


def _join_values(values) -> str:
    return "|".join(value.replace("\\", "\\\\").replace("|", "\\|") for value in values)


def _split_values(raw: str) -> list[str]:
    """The values `_join_values` joined: split at each `|` that is not escaped."""
    values, current, escaped = [], [], False
    for character in raw:
        if escaped:
            current.append(character)
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == "|":
            values.append("".join(current))
            current = []
        else:
            current.append(character)
    if escaped:  # a trailing lone backslash stands for itself
        current.append("\\")
    values.append("".join(current))
    return values
