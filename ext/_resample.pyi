from PIL import Image

def resize(
    image: Image.Image,
    width: int,
    height: int,
    filter: int,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    threads: int = 1,
    order: int = 0,
    zero_copy: bool = True,
) -> Image.Image: ...
def kernel_name() -> str: ...
def use_plain_c(flag: bool) -> None: ...
def pillow_layout_known(image: Image.Image) -> bool: ...
def threads_usable() -> bool: ...
