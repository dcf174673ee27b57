"""placeholder"""


async def main(settings=None):
    return None
