# cmake -DINPUT=file -DOUTPUT=file.cc -DNAME=kSymbol -DNAMESPACE=ns -P embed_text.cmake
# Writes a .cc defining `const char NAMESPACE::NAME[]` with INPUT's text.
file(READ "${INPUT}" text)
file(WRITE "${OUTPUT}.tmp" "// Generated from ${INPUT}.\nnamespace ${NAMESPACE} {\nextern const char ${NAME}[];\nconst char ${NAME}[] = R\"hotpath_embed(${text})hotpath_embed\";\n}  // namespace ${NAMESPACE}\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
