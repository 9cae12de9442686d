# embed.cmake — turns a file into a C source holding its bytes, so the
# gateway serves its dashboard without reading any file at run time.
# cmake -DINPUT=file -DOUTPUT=file.c -DSYMBOL=name -P embed.cmake
file(READ "${INPUT}" content HEX)
string(LENGTH "${content}" hex_length)
math(EXPR length "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
string(REGEX REPLACE "(0x[0-9a-f][0-9a-f],){16}" "\\0\n    " bytes "${bytes}")
file(WRITE "${OUTPUT}"
    "/* Generated from ${INPUT} by embed.cmake; do not edit. */\n"
    "#include <stddef.h>\n"
    "const unsigned char ${SYMBOL}[] = {\n    ${bytes}0x00\n};\n"
    "const size_t ${SYMBOL}_size = ${length};\n")
