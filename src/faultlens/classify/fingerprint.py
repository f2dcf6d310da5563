"""Fingerprint grouping: online template groups of masked error messages, with stable ids and state."""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from faultlens.classify.cache_stats import UNATTRIBUTED, CacheCounter
from faultlens.classify.fingerprint_align import (
    DEFAULT_SIMILARITY,
    DIAG,
    SKIP_MSG,
    VAR,
    WILDCARD,
    Shape,
    Similarity,
    aligned,
    classify_token,
    covers,
    group_key,
    name_first,
    one_slot,
    positional,
)
from faultlens.classify.fingerprint_mask import (
    MaskCache,
    bounded_put,
    digit_shape,
    mask_tokens,
    normalize,
    uniform_mask,
)
from faultlens.classify.fingerprint_pool import KeyPool

__all__ = ["DEFAULT_SIMILARITY", "Fingerprinter", "Similarity", "Template"]

log = logging.getLogger(__name__)

# Past its limit of templates, a fingerprinter forgets its least recently used down to this share of the limit, so
# the (sorting) pass that picks them runs once per tenth of the limit of new templates, not per template.
_KEEP_AFTER_FORGETTING = 0.9

STATE_VERSION = 1
_RAW_CACHE_MAX_CHARS = 1024  # longer raw messages are not cached verbatim


@dataclass(frozen=True)
class Template:
    """A message template: `id` is stable for the life of the group, `text` may generalise."""

    id: str
    text: str


class _Group:
    __slots__ = ("classes", "count", "first_text", "id", "key", "merged_into", "seq", "template", "tokens", "used")

    def __init__(self, gid: str, seq: int, tokens: list[str], classes: list[int]) -> None:
        self.id = gid
        self.seq = seq
        self.tokens = tokens
        self.classes = classes
        self.count = 0
        self.first_text = " ".join(tokens)
        self.key = group_key(tokens, classes)
        self.merged_into: _Group | None = None
        self.template = Template(gid, self.first_text)
        self.used = 0  # the fingerprinter's use tick when a message last joined it (which templates to forget first)

    def refresh(self) -> None:
        self.template = Template(self.id, " ".join(self.tokens))


def _check_version(state: Mapping[str, Any]) -> None:
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"unsupported fingerprint state version: {state.get('version')!r}")


def _group_of(raw: Mapping[str, Any], seq: int) -> _Group:
    """A group of an exported state, numbered `seq`."""
    tokens = [str(t) for t in raw["tokens"]]
    classes = [classify_token(t) for t in tokens]
    name_first(tokens, classes)
    group = _Group(str(raw["id"]), seq, tokens, classes)
    group.count = int(raw["count"])
    group.first_text = str(raw["first_text"])
    group.used = int(raw.get("used", 0))
    return group


def _template_id(text: str, taken: Callable[[str], bool]) -> str:
    # Hash of the group's first text, so a fresh process fed the same first message derives the
    # same id. A clash (same first text in a separate group, or the id of a merged-away group)
    # gets a deterministic suffix.
    salt = 0
    while True:
        seed = text if salt == 0 else f"{text}\x00{salt}"
        tid = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:16]
        if not taken(tid):
            return tid
        salt += 1


class Fingerprinter:
    """Online template grouping of error messages.

    Messages are normalised and masked; each group is keyed by its first word token. A message
    is aligned with the templates of its key (one-to-one when the lengths agree, otherwise by a
    small edit alignment in which only variable slots may be skipped) and joins the cheapest one
    within the length-adaptive cost bound, generalising disagreeing positions to <*>; otherwise
    it founds a new group. A group's id is a 16-hex hash of its first text and never changes.
    When a template generalises so far that it covers another group's template, the two merge
    under the older id; `resolve` maps the other id to the survivor.

    Exact repeats of a raw or masked message are answered from caches without re-aligning, and so
    is a message that differs from a seen one only in digits that masking replaces (its digit shape
    is cached with the masked text), which is the common case of a live stream.

    With `max_templates`, a fingerprinter that would hold more forgets the templates messages joined least recently
    (down to 90% of the limit): memory, the garbage collector's walk and a saved state stay bounded for a source
    whose free-text messages keep making new templates. A forgotten id stays valid where it is stored (events,
    the fingerprints table, merges); a later message of its shape founds a group again, under the same id when its
    first text is the forgotten group's first text (ids are hashes of it).

    Thread-safety: an instance may be shared by threads. Learning and lookups run under an
    internal lock; only a message whose masked text is already known is answered without it, so
    under concurrent use a member count (export_state's "count") may miss an increment. Not
    shared across processes: give each its own instance and move state with
    export_state/from_state (merge_state unites two processes' templates).
    """

    def __init__(self, similarity: Similarity = DEFAULT_SIMILARITY, *, max_templates: int | None = None) -> None:
        if max_templates is not None and max_templates < 1:
            raise ValueError("max_templates must be at least 1 (None: no limit)")
        self._sim = similarity
        self._max_templates = max_templates
        self._ticks = itertools.count(1)  # next() is atomic: the lock-free path stamps uses with it too
        self.forgotten = 0  # templates forgotten over the limit, in all
        # Counts add() lookups and cache hits; the tenants' registry points it at the tenant's counter.
        self.cache_counter: CacheCounter = UNATTRIBUTED
        self._lock = threading.RLock()
        self._groups: dict[str, _Group] = {}
        self._aliases: dict[str, str] = {}
        self._index: dict[str, KeyPool[_Group]] = {}
        self._seq = 0
        self._raw_cache: dict[str, _Group] = {}
        self._masked_cache: dict[str, _Group] = {}
        # digit shape -> the masked text all its messages share (None: masking keeps some digits)
        self._shape_cache: dict[str, str | None] = {}
        self._mask_cache = MaskCache()
        self._class_cache: dict[str, tuple[int, str]] = {}

    # -- public API --------------------------------------------------------------------

    def add(self, message: str) -> Template:
        """Learn from `message` and return the template it now belongs to."""
        # A message whose masked text is already known changes no template, so it is answered
        # without the lock: dict reads are atomic, and the only shared write is the
        # (informational) member count.
        counts = self.cache_counter
        counts.requests += 1
        group = self._raw_cache.get(message) or self._known_shape(message)
        if group is not None:
            counts.hits += 1
            while group.merged_into is not None:
                group = group.merged_into
            group.count += 1
            group.used = next(self._ticks)
            return group.template
        with self._lock:
            group = self._raw_cache.get(message)
            if group is None:
                text, masked = self._masked(message)
                group = self._masked_cache.get(text)
                if group is not None:
                    counts.hits += 1
                else:
                    shape = Shape(masked, self._class_cache)
                    group, ops = self._best(shape)
                    if group is None:
                        group = self._learn_slot(shape) or self._create(shape)
                    else:
                        group = self._absorb(group, shape, ops)
                    bounded_put(self._masked_cache, text, group)
                if len(message) <= _RAW_CACHE_MAX_CHARS:
                    bounded_put(self._raw_cache, message, group)
            else:  # another thread learnt it meanwhile
                counts.hits += 1
            while group.merged_into is not None:
                group = group.merged_into
            group.count += 1
            group.used = next(self._ticks)
            return group.template

    def match(self, message: str) -> Template | None:
        """Return the template `message` would join, without learning; None if it is new."""
        with self._lock:
            group = self._raw_cache.get(message) or self._known_shape(message)
            if group is None:
                masked = mask_tokens(normalize(message), self._mask_cache)
                group = self._masked_cache.get(" ".join(masked))
                if group is None:
                    group, _ = self._best(Shape(masked, self._class_cache))
                    if group is None:
                        return None
            while group.merged_into is not None:
                group = group.merged_into
            return group.template

    def templates(self) -> list[Template]:
        """All current templates, oldest group first."""
        with self._lock:
            return [g.template for g in sorted(self._groups.values(), key=lambda g: g.seq)]

    def resolve(self, template_id: str) -> str:
        """The id under which a template lives now (differs only for a group merged away)."""
        with self._lock:
            hops = 0
            while template_id in self._aliases and hops <= len(self._aliases):
                template_id = self._aliases[template_id]
                hops += 1
            return template_id

    def aliases_of(self, survivors: Collection[str]) -> set[str]:
        """The ids merged away whose `resolve` is one of `survivors` (one pass over the merges, not the templates)."""
        wanted = set(survivors)
        with self._lock:
            return {old for old in self._aliases if self.resolve(old) in wanted}

    def export_state(self) -> dict[str, Any]:
        """JSON-serialisable snapshot; `from_state` rebuilds an equivalent instance."""
        with self._lock:
            return {
                "version": STATE_VERSION,
                "seq": self._seq,
                "groups": [
                    {"id": g.id, "seq": g.seq, "tokens": list(g.tokens), "first_text": g.first_text,
                     "count": g.count, "used": g.used}
                    for g in sorted(self._groups.values(), key=lambda g: g.seq)
                ],
                "aliases": dict(self._aliases),
            }  # fmt: skip

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], similarity: Similarity = DEFAULT_SIMILARITY, *, max_templates: int | None = None
    ) -> Fingerprinter:
        """Rebuild a Fingerprinter from `export_state` output (the caches start empty; over `max_templates`, the
        least recently used are forgotten)."""
        _check_version(state)
        fp = cls(similarity, max_templates=max_templates)
        for raw in state["groups"]:
            fp._add_group(_group_of(raw, int(raw["seq"])))
        fp._aliases = {str(k): str(v) for k, v in state.get("aliases", {}).items()}
        fp._seq = max([int(state.get("seq", 0)), *(g.seq for g in fp._groups.values())])
        fp._ticks = itertools.count(max([0, *(g.used for g in fp._groups.values())]) + 1)
        fp._forget_over_limit()
        return fp

    def merge_state(self, state: Mapping[str, Any]) -> int:
        """Adopt the groups of another instance's `export_state` that this one lacks; returns how many.

        A union by id: every id either side handed out stays valid. A group both hold keeps this one's template;
        a group this one merged away stays an alias of its survivor; adopted groups come after this one's own
        (they lose ties to them). Raises ValueError, KeyError or TypeError when `state` does not load.
        """
        _check_version(state)
        adopted = sorted(state["groups"], key=lambda g: int(g["seq"]))
        aliases = {str(k): str(v) for k, v in state.get("aliases", {}).items()}
        with self._lock:
            added = 0
            for raw in adopted:
                gid = str(raw["id"])
                if gid in self._groups or gid in self._aliases:
                    continue
                self._seq += 1
                self._add_group(_group_of(raw, self._seq))
                added += 1
            for old, survivor in aliases.items():
                if old not in self._groups:
                    self._aliases.setdefault(old, survivor)
            self._forget_over_limit()
            return added

    def __len__(self) -> int:
        with self._lock:
            return len(self._groups)

    # -- internals ---------------------------------------------------------------------

    def _known_shape(self, message: str) -> _Group | None:
        """The group of a message that differs from a seen one only in digits masking replaces, if any."""
        if len(message) > _RAW_CACHE_MAX_CHARS:
            return None
        text = self._shape_cache.get(digit_shape(message))
        return None if text is None else self._masked_cache.get(text)

    def _masked(self, message: str) -> tuple[str, list[str]]:
        """Masked text and tokens of `message`; records whether its digit shape masks uniformly."""
        masked = mask_tokens(normalize(message), self._mask_cache)
        text = " ".join(masked)
        if len(message) <= _RAW_CACHE_MAX_CHARS:
            shape = digit_shape(message)
            if shape not in self._shape_cache:
                uniform = uniform_mask(shape, text, self._mask_cache)
                bounded_put(self._shape_cache, shape, text if uniform else None)
        return text, masked

    def _add_group(self, group: _Group) -> None:
        self._groups[group.id] = group
        self._pool(group.key).add(group)

    def _pool(self, key: str) -> KeyPool[_Group]:
        pool = self._index.get(key)
        if pool is None:
            pool = self._index[key] = KeyPool()
        return pool

    def _create(self, shape: Shape) -> _Group:
        self._seq += 1
        group = _Group("", self._seq, list(shape.tokens), list(shape.classes))
        group.id = _template_id(group.first_text, lambda tid: tid in self._groups or tid in self._aliases)
        group.refresh()
        group.used = next(self._ticks)
        self._add_group(group)
        self._forget_over_limit()
        return group

    def _forget_over_limit(self) -> None:
        """Over the limit, forget the least recently used templates down to 90% of it (the oldest first on a tie)."""
        limit = self._max_templates
        if limit is None or len(self._groups) <= limit:
            return
        keep = max(1, int(limit * _KEEP_AFTER_FORGETTING))
        gone = heapq.nsmallest(len(self._groups) - keep, self._groups.values(), key=lambda g: (g.used, g.seq))
        by_key: dict[str, set[_Group]] = {}
        for group in gone:
            del self._groups[group.id]
            by_key.setdefault(group.key, set()).add(group)
        for key, groups in by_key.items():
            pool = self._index[key]
            pool.discard_all(groups)
            if not pool:
                del self._index[key]
        # The caches name groups (some forgotten now): they start again, as when they fill up (bounded_put).
        self._raw_cache.clear()
        self._masked_cache.clear()
        self.forgotten += len(gone)
        log.info("fingerprints: over %d templates, forgot the %d least recently used", limit, len(gone))

    def _best(self, shape: Shape) -> tuple[_Group | None, list[int]]:
        pool = self._index.get(shape.key)
        if not pool:
            return None, []
        n = len(shape.tokens)
        sim = self._sim
        limit = sim.max_ratio * (n - shape.classes.count(VAR))
        # Only templates lacking few enough of the message's words can cost less than the limit (fingerprint_pool).
        candidates = pool.within(shape.tokens, budget=limit, unit=sim.hard)
        has_var = VAR in shape.classes
        best: _Group | None = None
        best_ops: list[int] = []
        best_cost = limit
        for group in candidates:
            size = len(group.tokens)
            if size == n:
                cost = positional(group.tokens, group.classes, shape, best_cost, sim)
                ops: list[int] = []
                if cost > best_cost and (has_var or VAR in group.classes):
                    cost, ops = aligned(group.tokens, group.classes, shape, best_cost, sim)
            elif has_var or VAR in group.classes:
                cost, ops = aligned(group.tokens, group.classes, shape, best_cost, sim)
            else:
                continue
            # Ties go to the older group: it is the one the stream has been using.
            if cost < best_cost or (cost == best_cost and best is None):
                best, best_cost, best_ops = group, cost, ops
                if cost == 0.0:
                    break
        return best, best_ops

    def _learn_slot(self, shape: Shape) -> _Group | None:
        """Join `shape` to the templates of its key that differ from it in one common position, if enough do.

        The oldest of them survives with a <*> in that position and takes in the others it now covers.
        """
        need = self._sim.slot_values - 1
        pool = self._index.get(shape.key)
        if need < 1 or not pool or len(pool) < need:
            return None
        tokens = shape.tokens
        n = len(tokens)
        by_slot: dict[int, list[_Group]] = {}
        # A template one slot away lacks at most one of the message's words.
        for group in pool.within(tokens, budget=1, unit=1):
            if len(group.tokens) == n:
                slot = one_slot(group.tokens, tokens)
                if slot >= 0:
                    by_slot.setdefault(slot, []).append(group)
        for slot, groups in by_slot.items():
            if len(groups) < need:
                continue
            keep = min(groups, key=lambda g: g.seq)
            generalised = list(keep.tokens)
            generalised[slot] = WILDCARD
            if not any(t != WILDCARD and c != VAR for t, c in zip(generalised, keep.classes, strict=True)):
                continue  # a template of nothing but variables would swallow its whole key
            classes = list(keep.classes)
            classes[slot] = VAR
            self._retemplate(keep, generalised, classes)
            return self._merge_converged(keep)
        return None

    def _retemplate(self, group: _Group, tokens: list[str], classes: list[int]) -> None:
        group.tokens = tokens
        group.classes = classes
        group.refresh()
        key = group_key(tokens, classes)
        if key != group.key:
            self._index[group.key].remove(group)
            group.key = key
            self._pool(key).add(group)
        else:
            self._index[key].reindex(group)

    def _absorb(self, group: _Group, shape: Shape, ops: list[int]) -> _Group:
        """Generalise `group` to cover `shape` along `ops` (empty: one-to-one)."""
        t, tc = group.tokens, group.classes
        m = shape.tokens
        tokens: list[str] = []
        classes: list[int] = []
        if not ops:
            ops = [DIAG] * len(t)
        i = j = 0
        for op in ops:
            if op == DIAG:
                same = t[j] == m[i]
                tokens.append(t[j] if same else WILDCARD)
                classes.append(tc[j] if same else VAR)
                i += 1
                j += 1
            elif op == SKIP_MSG:
                tokens.append(WILDCARD)
                classes.append(VAR)
                i += 1
            else:
                tokens.append(WILDCARD)
                classes.append(VAR)
                j += 1
        if tokens == t:
            return group
        self._retemplate(group, tokens, classes)
        return self._merge_converged(group)

    def _merge_converged(self, group: _Group) -> _Group:
        """Fold the groups `group` now covers (templates converged) into the oldest of them.

        The survivor keeps the oldest id and takes the generalised template; the other ids stay
        resolvable through `resolve`.
        """
        pool = self._index[group.key]
        same = [g for g in pool if g is not group and covers(group.tokens, g.tokens)]
        if not same:
            return group
        ordered = sorted([group, *same], key=lambda g: g.seq)
        keep = ordered[0]
        if keep is not group:
            keep.tokens, keep.classes = group.tokens, group.classes
            keep.refresh()
            pool.reindex(keep)
        for other in ordered[1:]:
            keep.count += other.count
            pool.remove(other)
            del self._groups[other.id]
            self._aliases[other.id] = keep.id
            other.merged_into = keep
        return keep
