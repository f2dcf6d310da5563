"""The templates of one group key, with an index of their words, so a message is aligned only with templates that
could take it.

A template's word tokens (class CONST) can only pair with an equal message token at no cost: against anything else,
a variable slot or a <*> included, each costs `hard` (fingerprint_align._sub_cost), and words are never skipped. So a
template holding k words the message does not contain costs at least k x hard, and one whose bound exceeds the
message's budget can be passed over without aligning it. `within` finds the others from an inverted index of the
words, in the pool's own order, so the choice among them (cheapest first, ties to the earlier) is the one a full scan
makes. Without it a key that collects many templates ("Error: ...", "Traceback ...") makes every new message align
with each of them, and learning slows with the square of the number of templates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import compress
from typing import Any, Generic, Protocol, TypeVar

from faultlens.classify.fingerprint_align import CONST

# A pool this small is scanned whole: counting index hits would cost more than the alignments it saves. The index is
# built the first time a pool this large is asked (most keys never are; a state being loaded pays nothing) and kept
# up to date from then on.
_SCAN_ALL_BELOW = 32
# Each template is also listed under its PREFIX rarest words, by rank (rarest when it was indexed): a template lacking
# at most k < PREFIX of the message's words holds one of its k + 1 rarest, so looking up ranks 0..k finds it.
PREFIX = 5


class _Member(Protocol):
    tokens: list[str]
    classes: list[int]


def words_of(tokens: Iterable[str], classes: Iterable[int]) -> tuple[str, ...]:
    """The distinct word (CONST) tokens of a template (a tuple: the collector stops tracking it)."""
    return tuple(dict.fromkeys(compress(tokens, map(CONST.__eq__, classes))))


G = TypeVar("G", bound=_Member)

# A word's groups in an index: the group itself while it is the only one (most words of a key with many templates
# are one template's own), a set from the second on. One container per word would triple the objects the cyclic
# garbage collector walks in a full collection of a process holding many templates.
_Holders = dict[str, Any]


def _put(index: _Holders, word: str, group: object) -> None:
    held = index.get(word)
    if held is None:
        index[word] = group
    elif type(held) is set:
        held.add(group)
    elif held is not group:
        index[word] = {held, group}


def _drop(index: _Holders, word: str, group: object) -> None:
    held = index.get(word)
    if held is group:
        del index[word]
    elif type(held) is set:
        held.discard(group)
        if len(held) == 1:
            index[word] = next(iter(held))


def _held(index: _Holders, word: str) -> Iterable[Any]:
    held = index.get(word)
    if held is None:
        return ()
    return held if type(held) is set else (held,)


def _count(index: _Holders, word: str) -> int:
    held = index.get(word)
    return 0 if held is None else len(held) if type(held) is set else 1


class KeyPool(Generic[G]):
    """The groups of one key in the order they joined it, which of them hold each word, and under which words each
    is listed for the prefix lookup (`within`)."""

    __slots__ = ("_few", "_holders", "_indexed", "_listed", "_order", "_ranked", "_seq", "_words", "groups")

    def __init__(self) -> None:
        self.groups: list[G] = []
        self._order: dict[G, int] = {}  # the order of `groups`, for sorting a subset back into it
        self._seq = 0
        self._words: dict[G, tuple[str, ...]] = {}
        self._holders: _Holders = {}  # word -> the groups holding it
        self._ranked: dict[G, tuple[str, ...]] = {}  # group -> its PREFIX rarest words, rarest first
        self._listed: list[_Holders] = [{} for _ in range(PREFIX)]  # rank -> word -> the groups listing it there
        self._few: set[G] = set()  # groups with fewer than PREFIX words: the prefix lookup cannot rule them out
        self._indexed = False

    def __len__(self) -> int:
        return len(self.groups)

    def __iter__(self) -> Iterator[G]:
        return iter(self.groups)

    def add(self, group: G) -> None:
        self.groups.append(group)
        self._seq += 1
        self._order[group] = self._seq
        if self._indexed:
            self._index(group)

    def remove(self, group: G) -> None:
        self.groups.remove(group)
        del self._order[group]
        if self._indexed:
            self._unindex(group)

    def discard_all(self, gone: set[G]) -> None:
        """Remove every group of `gone` this pool holds, in one pass over its order (a fingerprinter forgetting its
        least recently used templates removes many at once)."""
        held = [g for g in self.groups if g in gone]
        if not held:
            return
        self.groups = [g for g in self.groups if g not in gone]
        for group in held:
            del self._order[group]
            if self._indexed:
                self._unindex(group)

    def reindex(self, group: G) -> None:
        """After `group`'s tokens changed in place (it keeps its place in the order)."""
        if self._indexed:
            self._unindex(group)
            self._index(group)

    def within(self, tokens: Iterable[str], *, budget: float, unit: float) -> list[G]:
        """The groups, in order, lacking at most budget / unit of the words in `tokens` (all when unit <= 0)."""
        if len(self.groups) < _SCAN_ALL_BELOW or unit <= 0 or budget < 0:
            return self.groups
        if not self._indexed:
            self._index_all()
        present = set(tokens)
        words = self._words
        # At most `lacking` words missing (one more than budget / unit: float division must never shorten it).
        lacking = int(budget / unit) + 1
        if lacking + 1 > PREFIX:  # a long message may lack more words than a prefix holds: count them all
            hits: dict[G, int] = {}
            for token in present:
                for group in _held(self._holders, token):
                    hits[group] = hits.get(group, 0) + 1
            return [g for g in self.groups if (len(words[g]) - hits.get(g, 0)) * unit <= budget]
        found = set(self._few)
        for listed in self._listed[: lacking + 1]:
            for token in present:
                found.update(_held(listed, token))
        kept = [g for g in found if sum(1 for w in words[g] if w not in present) * unit <= budget]
        kept.sort(key=self._order.__getitem__)
        return kept

    def _index_all(self) -> None:
        """Index every group, each listed under its words rarest in the whole pool (a first pass counts them)."""
        self._indexed = True
        for group in self.groups:
            words = self._words[group] = words_of(group.tokens, group.classes)
            for word in words:
                _put(self._holders, word, group)
        for group in self.groups:
            self._list(group, self._words[group])

    def _index(self, group: G) -> None:
        words = self._words[group] = words_of(group.tokens, group.classes)
        for word in words:
            _put(self._holders, word, group)
        self._list(group, words)

    def _list(self, group: G, words: tuple[str, ...]) -> None:
        """List `group` under its PREFIX words held by the fewest groups now (ties by the word)."""
        if len(words) <= PREFIX:
            rarest = tuple(sorted(words))
            if len(words) < PREFIX:
                self._few.add(group)
        else:
            holders = self._holders
            rarest = tuple(sorted(words, key=lambda w: (_count(holders, w), w))[:PREFIX])
        self._ranked[group] = rarest
        for listed, word in zip(self._listed, rarest, strict=False):
            _put(listed, word, group)

    def _unindex(self, group: G) -> None:
        self._few.discard(group)
        for word in self._words.pop(group, ()):
            _drop(self._holders, word, group)
        for listed, word in zip(self._listed, self._ranked.pop(group, ()), strict=False):
            _drop(listed, word, group)
