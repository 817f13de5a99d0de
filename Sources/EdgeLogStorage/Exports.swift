// The record format is part of the storage engine's interface: whoever appends or reads the
// log handles records, batches and storage errors.
@_exported public import EdgeLogRecords
