package testutil

// AppendONNXMetadata returns an ONNX file with one more metadata_props
// entry (ModelProto field 14, a StringStringEntryProto of key and value)
// appended: protobuf fields may come in any order, so ONNX Runtime reads
// it as if the exporter had written it. Tests use it to bind a committed
// fixture to a model id only known at run time.
func AppendONNXMetadata(model []byte, key, value string) []byte {
	str := func(field byte, s string) []byte {
		return append(append([]byte{field<<3 | 2}, uvarint(len(s))...), s...)
	}
	entry := append(str(1, key), str(2, value)...)
	out := append([]byte(nil), model...)
	return append(append(append(out, 14<<3|2), uvarint(len(entry))...), entry...)
}

func uvarint(n int) []byte {
	var out []byte
	for n >= 0x80 {
		out = append(out, byte(n)|0x80)
		n >>= 7
	}
	return append(out, byte(n))
}
