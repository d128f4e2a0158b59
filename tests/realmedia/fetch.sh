#!/usr/bin/env bash
# Real media for tests/test_realmedia.py, from Debian packages (about 50 MB; no host named here: apt's own
# sources are used, and the system's apt configuration is left untouched).
#   linphone-common       ring tones and a song: Matroska/Opus music
#   asc-music             game soundtrack: MP3 music
#   python-kivy-examples  cityCC0.mpg: real footage, MPEG-2 in MPEG-PS, no audio
#   libopenshot (source)  the Sintel trailer (H.264 + AAC, 52 s) and footage in H.264/MP4 and MS-MPEG4/AVI
# Files land in $MVCL_REALMEDIA_CACHE (default ~/.cache/mvcl/realmedia)/media and are fetched once.
set -euo pipefail
cache="${MVCL_REALMEDIA_CACHE:-$HOME/.cache/mvcl/realmedia}"
media="$cache/media"
[ -f "$media/.complete" ] && { echo "real media already in $media"; exit 0; }
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || { echo "fetch.sh needs apt-get and dpkg-deb (Debian/Ubuntu)" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs" "$work/x" "$work/src/parts" "$work/src/lists/partial" "$media"

# Private package lists (binary and source) derived from the system's own sources and kept in $work: the
# source package of libopenshot needs deb-src entries, and the system's lists may be absent or stale.
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  sed 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources > "$work/src/parts/src.sources"
elif [ -f /etc/apt/sources.list ]; then
  sed -n 's/^deb \(.*\)/deb \1\ndeb-src \1/p' /etc/apt/sources.list > "$work/src/parts/src.list"
fi
apt=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/src/parts" -o "Dir::State::Lists=$work/src/lists")
apt-get -q "${apt[@]}" update
(cd "$work/debs" && apt-get -q "${apt[@]}" download linphone-common asc-music python-kivy-examples)
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
(cd "$work/src" && apt-get -q "${apt[@]}" source --download-only libopenshot)
tar -xJf "$work"/src/libopenshot_*.orig.tar.xz -C "$work/x" --wildcards \
  '*/examples/sintel_trailer-720p.mp4' '*/examples/test_video.mp4' '*/examples/test.avi' '*/examples/run.mp4'

for file in \
  usr/share/sounds/linphone/dont_wait_too_long.mkv \
  usr/share/sounds/linphone/rings/its_a_game.mkv \
  usr/share/sounds/linphone/rings/soft_as_snow.mkv \
  usr/share/sounds/linphone/rings/house_keeping.mkv \
  usr/share/games/asc/music/frontiers.mp3 \
  usr/share/games/asc/music/time_to_strike.mp3 \
  usr/share/kivy-examples/widgets/cityCC0.mpg; do
  cp "$work/x/$file" "$media/"
done
cp "$work"/x/libopenshot-*/examples/{sintel_trailer-720p.mp4,test_video.mp4,test.avi,run.mp4} "$media/"
touch "$media/.complete"
echo "real media in $media: $(du -sh "$media" | cut -f1)"
