package s3fs

// SetSingleCopy lowers the size above which Rename copies part by part.
func SetSingleCopy(n int64) func() {
	old := singleCopy
	singleCopy = n
	return func() { singleCopy = old }
}
