from collections.abc import Buffer

WALK_DONE: int
WALK_TRUNCATED: int
WALK_MALFORMED: int
WALK_NOT_CONTAINER: int

def jpeg_segments(buf: Buffer) -> tuple[list[tuple[int, int, int]], int, int]: ...
def png_chunks(buf: Buffer) -> tuple[list[tuple[int, int, int]], int, int]: ...
def riff_chunks(buf: Buffer) -> tuple[list[tuple[int, int, int]], int, int]: ...
