"""The query options of a LIST or WATCH, decoded, defaulted and validated as the real handler
does (k8s.io/apiserver endpoints/handlers/get.go ListResource), so a client sees the same 422s.

Decoding: a boolean option that is present is true unless its value is "0" or "false" (any
case), as Convert_Slice_string_To_Pointer_bool does; an absent sendInitialEvents stays unset.
Defaulting (SetListOptionsDefaults), only with the WatchList feature gate on: a watch with
resourceVersion "" or "0" that sets neither sendInitialEvents nor resourceVersionMatch gets
sendInitialEvents=true and resourceVersionMatch=NotOlderThan, so an old-style watch with
allowWatchBookmarks=true also receives the initial-events-end bookmark.
Validation (metainternalversion/validation ValidateListOptions), answered as
errors.NewInvalid(ListOptions.meta.k8s.io, "", errs): 422 Invalid, the messages below.
`watch` is the decoded watch parameter, not the route: the deprecated /watch/ prefix serves a
watch with watch unset, so it is validated as a list, as in the real server.
"""

from dataclasses import dataclass

from wire import invalid

NOT_OLDER_THAN = "NotOlderThan"
EXACT = "Exact"


def go_bool(text):
    """A present boolean query parameter as the apiserver decodes it."""
    return not (text == "0" or text.lower() == "false")


def _flag(params, name):
    return name in params and go_bool(params[name])


@dataclass
class ListOptions:
    watch: bool
    resource_version: str
    resource_version_match: str
    send_initial_events: object    # None (unset), True or False
    allow_watch_bookmarks: bool
    continue_token: str

    @property
    def watch_list(self):
        """A streaming list: initial state, then the initial-events-end bookmark (the
        cacher's isListWatchRequest)."""
        return bool(self.send_initial_events) and self.allow_watch_bookmarks


def decode(params):
    sie = params.get("sendInitialEvents")
    return ListOptions(
        watch=_flag(params, "watch"),
        resource_version=params.get("resourceVersion", ""),
        resource_version_match=params.get("resourceVersionMatch", ""),
        send_initial_events=None if sie is None else go_bool(sie),
        allow_watch_bookmarks=_flag(params, "allowWatchBookmarks"),
        continue_token=params.get("continue", ""))


def _forbidden(field, detail):
    return (field, "FieldValueForbidden", f"Forbidden: {detail}")


def _not_supported(field, value, supported):
    quoted = ", ".join(f'"{s}"' for s in supported)
    return (field, "FieldValueNotSupported",
            f'Unsupported value: "{value}": supported values: {quoted}')


def set_defaults(opts, watch_list_enabled):
    if not watch_list_enabled:
        return
    if opts.send_initial_events is not None or opts.resource_version_match:
        return
    if opts.watch and opts.resource_version in ("", "0"):
        opts.send_initial_events = True
        opts.resource_version_match = NOT_OLDER_THAN


def _validate_watch(opts, watch_list_enabled):
    errs = []
    match = opts.resource_version_match
    if opts.send_initial_events is not None:
        if match != NOT_OLDER_THAN:
            errs.append(_forbidden("resourceVersionMatch", "sendInitialEvents requires setting "
                                   f"resourceVersionMatch to {NOT_OLDER_THAN}"))
        if not watch_list_enabled:
            errs.append(_forbidden("sendInitialEvents", "sendInitialEvents is forbidden for "
                                   "watch unless the WatchList feature gate is enabled"))
    if match:
        if opts.send_initial_events is None:
            errs.append(_forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden "
                                   "for watch unless sendInitialEvents is provided"))
        if match != NOT_OLDER_THAN:
            errs.append(_not_supported("resourceVersionMatch", match, [NOT_OLDER_THAN]))
        if opts.continue_token:
            errs.append(_forbidden("resourceVersionMatch",
                                   "resourceVersionMatch is forbidden when continue is provided"))
    return errs


def _validate_list(opts):
    errs = []
    match = opts.resource_version_match
    if match:
        if not opts.resource_version:
            errs.append(_forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden "
                                   "unless resourceVersion is provided"))
        if opts.continue_token:
            errs.append(_forbidden("resourceVersionMatch",
                                   "resourceVersionMatch is forbidden when continue is provided"))
        if match not in (EXACT, NOT_OLDER_THAN):
            errs.append(_not_supported("resourceVersionMatch", match,
                                       [EXACT, NOT_OLDER_THAN, ""]))
        if match == EXACT and opts.resource_version == "0":
            errs.append(_forbidden("resourceVersionMatch", 'resourceVersionMatch "exact" is '
                                   'forbidden for resourceVersion "0"'))
    if opts.send_initial_events is not None:
        errs.append(_forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list"))
    return errs


def parse(params, watch_list_enabled):
    """The ListOptions of a LIST/WATCH request; raises the 422 Invalid ApiError."""
    opts = decode(params)
    set_defaults(opts, watch_list_enabled)
    errs = _validate_watch(opts, watch_list_enabled) if opts.watch else _validate_list(opts)
    if errs:
        raise invalid("ListOptions", "meta.k8s.io", "", errs)
    return opts
