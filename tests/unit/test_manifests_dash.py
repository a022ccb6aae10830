"""DASH as packagers write it (ISO/IEC 23009-1): inheritance, index and switching segments,
decimals, @endNumber, the single-segment template, and every timeline form."""

from __future__ import annotations

import pytest

from shared.manifests import Manifest, parse_manifest

NS = 'xmlns="urn:mpeg:dash:schema:mpd:2011"'


def dash(body: str, duration: str = "PT8S") -> Manifest:
    text = f'<MPD {NS} type="static" mediaPresentationDuration="{duration}">{body}</MPD>'
    return parse_manifest("/m/manifest.mpd", text.encode(), None, "cdn.example.com")


def kinds(manifest: Manifest) -> list[tuple[str, str]]:
    return [(reference.path, reference.kind) for reference in manifest.references]


def test_segment_information_is_inherited_from_period_and_adaptation_set() -> None:
    # §5.3.9.1: a Period-level SegmentTemplate applies to every Representation below it;
    # lower levels override attributes, and the lowest SegmentTimeline is the one used
    manifest = dash(
        """<Period><SegmentTemplate timescale="1" media="$RepresentationID$/$Number$.m4s"
             initialization="$RepresentationID$/init.mp4" startNumber="0">
             <SegmentTimeline><S t="0" d="4" r="1"/></SegmentTimeline></SegmentTemplate>
          <AdaptationSet><SegmentTemplate startNumber="10"/>
            <Representation id="a"/>
            <Representation id="b"><SegmentTemplate>
              <SegmentTimeline><S t="0" d="8"/></SegmentTimeline></SegmentTemplate>
            </Representation>
          </AdaptationSet></Period>"""
    )
    assert kinds(manifest) == [
        ("/m/a/init.mp4", "init"),
        ("/m/a/10.m4s", "segment"),
        ("/m/a/11.m4s", "segment"),
        ("/m/b/init.mp4", "init"),
        ("/m/b/10.m4s", "segment"),
    ]


def test_the_lowest_level_decides_the_addressing() -> None:
    # An AdaptationSet template, but this Representation is one file (its SegmentBase)
    manifest = dash(
        """<Period><AdaptationSet>
          <SegmentTemplate media="$Number$.m4s" duration="4"/>
          <Representation id="t"/>
          <Representation id="f"><BaseURL>f.mp4</BaseURL>
            <SegmentBase indexRange="0-99"><RepresentationIndex sourceURL="f.sidx"/>
            </SegmentBase></Representation>
        </AdaptationSet></Period>"""
    )
    assert kinds(manifest) == [
        ("/m/1.m4s", "segment"),
        ("/m/2.m4s", "segment"),
        ("/m/f.mp4", "segment"),
        ("/m/f.sidx", "init"),
    ]


def test_representation_index_and_initialization_in_segment_base_and_segment_list() -> None:
    manifest = dash(
        """<Period><AdaptationSet>
          <SegmentList><Initialization sourceURL="list-init.mp4"/></SegmentList>
          <Representation id="l"><SegmentList>
              <RepresentationIndex sourceURL="l.sidx"/>
              <SegmentURL media="l1.m4s" index="l1.sidx"/><SegmentURL media="l2.m4s"/>
          </SegmentList></Representation>
          <Representation id="b"><BaseURL>b.mp4</BaseURL><SegmentBase>
              <Initialization sourceURL="b-init.mp4"/><RepresentationIndex sourceURL="b.sidx"/>
          </SegmentBase></Representation>
        </AdaptationSet></Period>"""
    )
    assert kinds(manifest) == [
        ("/m/list-init.mp4", "init"),  # inherited from the AdaptationSet's SegmentList
        ("/m/l.sidx", "init"),
        ("/m/l1.m4s", "segment"),
        ("/m/l1.sidx", "init"),
        ("/m/l2.m4s", "segment"),
        ("/m/b.mp4", "segment"),
        ("/m/b-init.mp4", "init"),
        ("/m/b.sidx", "init"),
    ]


def test_template_index_and_bitstream_switching_segments() -> None:
    manifest = dash(
        """<Period><AdaptationSet bitstreamSwitching="true">
          <SegmentTemplate media="$RepresentationID$-$Number$.m4s" duration="8"
            index="$RepresentationID$.sidx" bitstreamSwitching="$RepresentationID$-bss.mp4"/>
          <Representation id="v" bandwidth="1"/>
          <Representation id="w"><SegmentTemplate bitstreamSwitching="true"/></Representation>
        </AdaptationSet></Period>"""
    )
    assert kinds(manifest) == [
        ("/m/v.sidx", "init"),
        ("/m/v-bss.mp4", "init"),
        ("/m/v-1.m4s", "segment"),
        ("/m/w.sidx", "init"),  # a boolean where a template belongs names no object
        ("/m/w-1.m4s", "segment"),
    ]


def test_decimal_numeric_attributes_count_like_whole_ones() -> None:
    manifest = dash(
        """<Period><AdaptationSet><Representation id="r">
          <SegmentTemplate timescale="1000000.0" duration="2000000.0" startNumber="1.0"
            media="$Number%03d$.m4s"/></Representation></AdaptationSet></Period>""",
        duration="PT6S",
    )
    assert [path for path, _ in kinds(manifest)] == ["/m/001.m4s", "/m/002.m4s", "/m/003.m4s"]


@pytest.mark.parametrize("start_number", ["1.5", "x"])
def test_a_number_that_is_not_whole_is_refused_with_a_reason(start_number: str) -> None:
    manifest = dash(
        f"""<Period><AdaptationSet><Representation id="r">
          <SegmentTemplate duration="2" startNumber="{start_number}" media="$Number$.m4s"/>
        </Representation></AdaptationSet></Period>"""
    )
    assert manifest.references == ()
    assert manifest.ignored_reasons == {"SegmentTemplate malformed": 1}


def test_end_number_bounds_a_duration_template_and_a_timeline() -> None:
    manifest = dash(
        """<Period><AdaptationSet>
          <Representation id="d"><SegmentTemplate duration="1" endNumber="3"
            media="d$Number$.m4s"/></Representation>
          <Representation id="t"><SegmentTemplate endNumber="2" media="t$Number$.m4s">
            <SegmentTimeline><S t="0" d="1" r="-1"/></SegmentTimeline></SegmentTemplate>
          </Representation></AdaptationSet></Period>"""
    )
    # (the Period lasts 8 s: without @endNumber 8 of each)
    assert [path for path, _ in kinds(manifest)] == [
        "/m/d1.m4s",
        "/m/d2.m4s",
        "/m/d3.m4s",
        "/m/t1.m4s",
        "/m/t2.m4s",
    ]


def test_a_number_template_without_duration_or_timeline_is_its_one_segment() -> None:
    # §5.3.9.2: more than one Media Segment needs @duration or a SegmentTimeline
    manifest = dash(
        """<Period><AdaptationSet><Representation id="r">
          <SegmentTemplate startNumber="7" media="r-$Number%02d$.m4s"/>
        </Representation></AdaptationSet></Period>"""
    )
    assert kinds(manifest) == [("/m/r-07.m4s", "segment")]


@pytest.mark.parametrize(
    ("media", "expected"),
    [
        # $Time$ is the S@t of each segment, r repeats, r="-1" up to the next S's @t
        ("$Time$.m4s", ["0", "90", "180", "300", "400"]),
        ("$Time%08d$.m4s", ["00000000", "00000090", "00000180", "00000300", "00000400"]),
        ("$Number$.m4s", ["5", "6", "7", "8", "9"]),
        ("$Number%04d$-$Bandwidth$.m4s", ["0005-64", "0006-64", "0007-64", "0008-64", "0009-64"]),
    ],
)
def test_time_and_number_with_every_timeline_form(media: str, expected: list[str]) -> None:
    manifest = dash(
        f"""<Period duration="PT5S"><AdaptationSet><Representation id="a" bandwidth="64">
          <SegmentTemplate timescale="100" startNumber="5" media="{media}">
            <SegmentTimeline>
              <S t="0" d="90" r="1"/><S d="120"/><S t="300" d="100" r="-1"/>
            </SegmentTimeline></SegmentTemplate>
        </Representation></AdaptationSet></Period>"""
    )
    # The last S repeats until the Period's end: 5 s × 100 = 500
    suffix = media.rsplit("$", 1)[1]
    assert [path for path, _ in kinds(manifest)] == [f"/m/{e}{suffix}" for e in expected]


def test_a_repeat_to_an_unknown_end_is_not_guessed() -> None:
    manifest = dash(
        """<Period><AdaptationSet><Representation id="a">
          <SegmentTemplate media="$Time$.m4s">
            <SegmentTimeline><S t="0" d="2" r="1"/><S d="2" r="-1"/></SegmentTimeline>
          </SegmentTemplate></Representation></AdaptationSet></Period>""",
        duration="",
    )
    assert [path for path, _ in kinds(manifest)] == ["/m/0.m4s", "/m/2.m4s"]


def test_a_time_that_is_not_whole_is_ignored_with_a_reason() -> None:
    manifest = dash(
        """<Period><AdaptationSet><Representation id="a">
          <SegmentTemplate media="$Time$.m4s">
            <SegmentTimeline><S t="0.5" d="2"/></SegmentTimeline>
          </SegmentTemplate></Representation></AdaptationSet></Period>"""
    )
    assert manifest.references == ()
    assert manifest.ignored_reasons == {"template time is not a whole number": 1}


def test_a_remote_adaptation_set_is_not_fetched() -> None:
    manifest = dash(
        '<Period xmlns:xlink="http://www.w3.org/1999/xlink">'
        '<AdaptationSet xlink:href="https://x.example/as"/></Period>'
    )
    assert manifest.references == ()
    assert manifest.ignored_reasons == {"remote AdaptationSet (xlink:href)": 1}


def test_end_number_stops_a_hostile_timeline_at_once() -> None:
    manifest = dash(
        """<Period><AdaptationSet><Representation id="r">
          <SegmentTemplate endNumber="2" media="$Number$.m4s">
            <SegmentTimeline><S t="0" d="1" r="1000000000000"/></SegmentTimeline>
          </SegmentTemplate></Representation></AdaptationSet></Period>"""
    )
    assert [path for path, _ in kinds(manifest)] == ["/m/1.m4s", "/m/2.m4s"]


@pytest.mark.parametrize(
    ("media", "s"),
    [
        ("$Time$.m4s", '<S t="0.5" d="1" r="1000000000000"/>'),
        ("$Bandwidth$-$Number$.m4s", '<S d="1" r="1000000000000"/>'),
    ],
)
def test_a_template_that_never_yields_an_object_still_ends(media: str, s: str) -> None:
    # Every candidate is refused (a time that is not whole, an identifier with no value):
    # each still costs a step, so the parse stops at the budget instead of running 10^12
    manifest = dash(
        f"""<Period><AdaptationSet><Representation id="r">
          <SegmentTemplate media="{media}"><SegmentTimeline>{s}</SegmentTimeline>
          </SegmentTemplate></Representation></AdaptationSet></Period>"""
    )
    assert manifest.references == () and manifest.truncated
