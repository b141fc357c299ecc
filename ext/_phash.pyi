DCT_BITS: int
PHASH_SIZE: int
DHASH_WIDTH: int
DHASH_HEIGHT: int

def dct_table() -> list[list[int]]: ...
def gray_thumbnail(
    image: object,
    width: int,
    height: int,
    filter: int = 3,
    row_step: int = 1,
    threads: int = 1,
    order: int = 0,
    zero_copy: bool = True,
) -> bytes: ...
def phash(image: object, row_step: int = 1, threads: int = 1) -> int: ...
def dhash(image: object, row_step: int = 1, threads: int = 1) -> int: ...
def phash_of_thumbnail(pixels: bytes) -> int: ...
def dhash_of_thumbnail(pixels: bytes) -> int: ...
