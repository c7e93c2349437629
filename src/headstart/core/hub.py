"""The Hugging Face hub's failures told apart by their types, so a message keeps the real cause.

``huggingface_hub`` raises one exception type per cause (``huggingface_hub.errors``): a gated
model, a name the hub does not know, no connection, offline mode, an HTTP error, a cache that
cannot be read. :func:`hub_failure` turns each into a phrase that names the cause and what to
do; callers chain the original exception (``raise ... from error``) so ``--debug`` shows it.
"""

from __future__ import annotations


def hub_failure(error: BaseException, name: str) -> str:
    """What went wrong fetching ``name`` (a hub model id), from the type of ``error``."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    said = _first_line(error)
    if isinstance(error, GatedRepoError):  # before RepositoryNotFoundError, its base
        return (
            f"{name} is gated on the hub: accept its terms at https://huggingface.co/{name} "
            "and log in (`hf auth login`, or set HF_TOKEN)"
        )
    if isinstance(error, RepositoryNotFoundError):
        return (
            f"the hub has no model {name!r} (check the name; a private model needs a login: "
            "`hf auth login`, or set HF_TOKEN)"
        )
    if isinstance(error, RevisionNotFoundError):
        return f"the hub has no such revision of {name}: {said}"
    if isinstance(error, OfflineModeIsEnabled | LocalEntryNotFoundError) and offline():
        return "HF_HUB_OFFLINE is set, so the hub was not asked"
    if isinstance(error, LocalEntryNotFoundError):  # what a download raises when offline
        return "the hub could not be reached (no network connection?)"
    if isinstance(error, EntryNotFoundError):
        return f"a file {name} needs is missing: {said}"
    if isinstance(error, HfHubHTTPError):
        status = getattr(getattr(error, "response", None), "status_code", None)
        code = f" HTTP {status}" if status else " an HTTP error"
        server = (getattr(error, "server_message", None) or "").strip()
        return f"the hub answered{code}: {_first_line(server) if server else said}"
    if isinstance(error, HFValidationError):
        return f"{name!r} is not a valid hub model id: {said}"
    if isinstance(error, OSError):  # a cache that cannot be read or written
        return f"the Hugging Face cache could not be used ({type(error).__name__}: {said})"
    return f"{type(error).__name__}: {said}"


def offline() -> bool:
    """Whether huggingface_hub runs in offline mode (``HF_HUB_OFFLINE``)."""
    from huggingface_hub import constants

    check = getattr(constants, "is_offline_mode", None)  # read from the environment each call
    return bool(check() if check else constants.HF_HUB_OFFLINE)


def _first_line(error: BaseException | str, limit: int = 200) -> str:
    text = str(error).strip().splitlines()
    line = next((t.strip() for t in text if t.strip()), "") or type(error).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."
