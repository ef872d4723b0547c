"""The candidate search of a round with NumPy: every (practice, search) pair the grid brings
together, decided in arrays instead of one by one. Same answers as `round._find_candidates`
(which stays the reference, and the fallback without NumPy):

- the pairs are the grid runs of `PracticeIndex.runs` per search, expanded into arrays;
- every hard constraint but distance: the bits of `PracticeIndex.passing` per grid run (as in
  the pure search), unpacked into one flag per pair;
- distance: chord lengths against the `ReachScreen` limits, whose slack covers the rounding
  of either way of computing a chord; pairs between the limits go to `ReachScreen.decide`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from therapy_platform.matching.domain.compact import (
    Candidates,
    PracticeIndex,
    ReachScreen,
    SearchTable,
    unit_vector,
)

_PAIRS_PER_CHUNK = 1 << 20  # bounds the arrays of one step (some 40 MB)


def find_candidates(index: PracticeIndex, table: SearchTable, search_key: Sequence[int]) -> Candidates:
    searches = table.searches
    candidates = Candidates(index.size, len(searches))
    failed_other = candidates.failed_other_than_distance
    if not index.size or not searches:
        return candidates
    practice_points = np.asarray(index.points, dtype=np.float64)
    screens: dict[tuple[float, float, bool], ReachScreen] = {}
    screen_of: list[ReachScreen | None] = [None] * len(searches)
    points: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * len(searches)
    # per grid run with at least one practice passing every rule but distance: its first slot,
    # its search and its pass bits, padded to whole bytes
    run_starts: list[int] = []
    run_searches: list[int] = []
    run_bytes: list[int] = []
    run_bits: list[bytes] = []
    chunk_ends: list[int] = []  # run count at the end of each chunk
    pairs_in_chunk = 0
    accepted_searches: list[np.ndarray[Any, Any]] = []
    accepted_slots: list[np.ndarray[Any, Any]] = []

    for position, search in enumerate(searches):
        latitude, longitude = search.location.latitude, search.location.longitude
        assert latitude is not None and longitude is not None  # eligible: known location
        runs = index.runs(latitude, longitude, search.max_travel_km)
        if not runs:
            continue
        passing = index.passing(search, table.ages[position])
        any_passing = False
        for start, end in runs:
            everyone = (1 << (end - start)) - 1
            bits = (passing >> start) & everyone
            if bits != everyone:
                failed_other[search_key[position]] = 1
            if bits:
                any_passing = True
                size = (end - start + 7) >> 3
                run_starts.append(start)
                run_searches.append(position)
                run_bytes.append(size)
                run_bits.append(bits.to_bytes(size, "little"))
                pairs_in_chunk += size << 3
        if not any_passing:
            continue
        points[position] = unit_vector(latitude, longitude)
        screen_key = (latitude, search.max_travel_km, search.max_travel_minutes is None)
        screen = screens.get(screen_key)
        if screen is None:
            screen = screens[screen_key] = ReachScreen(search)
        screen_of[position] = screen
        if pairs_in_chunk >= _PAIRS_PER_CHUNK:
            chunk_ends.append(len(run_starts))
            pairs_in_chunk = 0
    chunk_ends.append(len(run_starts))
    if not run_starts:
        return candidates

    search_points = np.asarray(points, dtype=np.float64)
    surely_in = np.asarray([-1.0 if s is None else s.surely_in for s in screen_of], dtype=np.float64)
    surely_out = np.asarray([-1.0 if s is None else s.surely_out for s in screen_of], dtype=np.float64)
    starts = np.asarray(run_starts, dtype=np.int32)
    owners = np.asarray(run_searches, dtype=np.int32)
    first_run = 0
    for last_run in chunk_ends:
        if last_run == first_run:
            continue
        passes = np.unpackbits(
            np.frombuffer(b"".join(run_bits[first_run:last_run]), dtype=np.uint8), bitorder="little"
        )
        bit_lengths = np.asarray(run_bytes[first_run:last_run], dtype=np.int32) << 3
        bit_offsets = np.cumsum(bit_lengths) - bit_lengths
        run_of_bit = np.repeat(np.arange(last_run - first_run, dtype=np.int32), bit_lengths)
        keep = np.flatnonzero(passes)
        pair_run = run_of_bit[keep]
        pair_slot = starts[first_run:last_run][pair_run] + (keep - bit_offsets[pair_run]).astype(np.int32)
        pair_search = owners[first_run:last_run][pair_run]
        difference = practice_points[pair_slot] - search_points[pair_search]
        chord = np.sqrt(np.einsum("ij,ij->i", difference, difference))
        inside = chord < surely_in[pair_search]
        for pair in np.flatnonzero(~inside & (chord <= surely_out[pair_search])).tolist():
            position = int(pair_search[pair])
            owner = index.practices[int(pair_slot[pair])].owner
            screen = screen_of[position]
            assert screen is not None
            inside[pair] = screen.decide(float(chord[pair]), owner, searches[position])
        accepted_searches.append(pair_search[inside])
        accepted_slots.append(pair_slot[inside])
        first_run = last_run

    all_searches = np.concatenate(accepted_searches)
    all_slots = np.concatenate(accepted_slots)
    del accepted_searches, accepted_slots
    matched = np.zeros(len(searches), dtype=bool)
    matched[np.asarray(search_key, dtype=np.int32)[all_searches]] = True
    for key in np.flatnonzero(matched).tolist():
        candidates.matched_somewhere[key] = 1
    # Per practice in waiting order: a stable sort by slot keeps the search order of each
    # (16-bit slots sort by radix). The lists hold the same int objects as `positions`, not
    # millions of copies.
    slot_type = np.uint16 if index.size <= 1 << 16 else np.int32
    bounds = np.cumsum(np.bincount(all_slots, minlength=index.size)).tolist()
    by_practice = all_searches[np.argsort(all_slots.astype(slot_type), kind="stable")]
    del all_slots, all_searches
    positions = list(range(len(searches)))
    begin = 0
    for slot, end in enumerate(bounds):
        if end > begin:
            candidates[slot] = list(map(positions.__getitem__, by_practice[begin:end].tolist()))
        begin = end
    return candidates
