# Writes the bytes of IN as a C array NAME (and NAME_len) into OUT:
#   cmake -DIN=page.html -DOUT=page.c -DNAME=web_page -P embed.cmake
# A build step of percore, not of the page: the page itself is one plain
# HTML file, edited and served as it is.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
# Twenty bytes a line: "0xAB," each.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x..,){20})" "\\1\n" body "${body}")
file(WRITE "${OUT}.tmp"
  "/* Generated from ${IN} by cmake/embed.cmake: edit the page, not this. */\n"
  "#include <stddef.h>\n"
  "const unsigned char ${NAME}[] = {\n${body}0x00};\n"
  "const size_t ${NAME}_len = ${len};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
