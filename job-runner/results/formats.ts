import type { Writable } from 'node:stream';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { DEFAULT_ROW_GROUP_SIZE, type ExportFormat } from './export-options.js';
import { EXPORT_COLUMNS, type ColumnType, type ExportColumn, type ExportRow, type RowSink } from './export.js';

/**
 * The export formats, each a RowSink over a Node stream (a file or stdout) that honours its backpressure: a write
 * resolves only once the stream has room, so a slow disk or a slow pipe holds the cursor back instead of filling
 * memory.
 *
 * - CSV (RFC 4180): a header row, then one line per file; NULL is an empty field, a list is a JSON array (the only
 *   spelling of a list of names that needs no second quoting convention), booleans are true/false.
 * - JSON Lines: one object per file, lists as arrays, NULL as null.
 * - Parquet: typed columns (lists as LIST), snappy-compressed, one row group per `rowGroupSize` files, each written
 *   out before the next is gathered.
 */

export function sinkFor(
  format: ExportFormat,
  out: Writable,
  options: { rowGroupSize?: number; columns?: readonly ExportColumn[] } = {},
): RowSink {
  const columns = options.columns ?? EXPORT_COLUMNS;
  switch (format) {
    case 'csv':
      return new CsvSink(out, columns);
    case 'jsonl':
      return new JsonLinesSink(out, columns);
    case 'parquet':
      return new ParquetSink(out, columns, options.rowGroupSize ?? DEFAULT_ROW_GROUP_SIZE);
  }
}

/** Writes `chunk` and resolves when the stream can take more (at once if its buffer is below the high-water mark). */
function writeChunk(out: Writable, chunk: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    out.once('error', onError);
    const roomLeft = out.write(chunk, (err) => {
      if (err) reject(err);
    });
    const done = () => {
      out.off('error', onError);
      resolve();
    };
    if (roomLeft) done();
    else out.once('drain', done);
  });
}

export function csvField(value: ExportRow[number]): string {
  if (value === null) return '';
  const text = Array.isArray(value) ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

class CsvSink implements RowSink {
  private headerWritten = false;
  constructor(
    private readonly out: Writable,
    private readonly columns: readonly ExportColumn[],
  ) {}

  async write(rows: readonly ExportRow[]): Promise<void> {
    let text = '';
    if (!this.headerWritten) {
      text += this.columns.map((c) => csvField(c.name)).join(',') + '\r\n';
      this.headerWritten = true;
    }
    for (const row of rows) text += row.map(csvField).join(',') + '\r\n';
    await writeChunk(this.out, text);
  }

  async end(): Promise<void> {
    // A file with no rows still says which columns it would have had.
    if (!this.headerWritten) await this.write([]);
  }
}

class JsonLinesSink implements RowSink {
  constructor(
    private readonly out: Writable,
    private readonly columns: readonly ExportColumn[],
  ) {}

  async write(rows: readonly ExportRow[]): Promise<void> {
    let text = '';
    for (const row of rows)
      text += JSON.stringify(Object.fromEntries(this.columns.map((c, i) => [c.name, row[i]]))) + '\n';
    if (text) await writeChunk(this.out, text);
  }

  async end(): Promise<void> {}
}

type SchemaElement = ConstructorParameters<typeof ParquetWriter>[0]['schema'][number];

/** The Parquet schema of the export: every column optional (NULL for files not analysed), lists as 3-level LISTs. */
export function parquetSchema(columns: readonly ExportColumn[]): SchemaElement[] {
  const scalar = (type: ColumnType): Omit<SchemaElement, 'name'> => {
    switch (type) {
      case 'text':
      case 'timestamp':
      case 'text[]':
        return { type: 'BYTE_ARRAY', converted_type: 'UTF8' };
      case 'int32':
      case 'int32[]':
        return { type: 'INT32' };
      case 'int64':
        return { type: 'INT64' };
      case 'double':
        return { type: 'DOUBLE' };
      case 'bool':
        return { type: 'BOOLEAN' };
    }
  };
  const schema: SchemaElement[] = [{ name: 'root', num_children: columns.length }];
  for (const c of columns) {
    if (c.type.endsWith('[]')) {
      schema.push(
        { name: c.name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', repetition_type: 'REQUIRED', ...scalar(c.type) },
      );
    } else {
      schema.push({ name: c.name, repetition_type: 'OPTIONAL', ...scalar(c.type) });
    }
  }
  return schema;
}

/**
 * hyparquet-writer's ByteWriter, flushed to a stream after every row group (the ParquetWriter calls flush() and
 * awaits it): its buffer holds one row group at most. `offset` keeps counting across flushes, as the file's
 * metadata needs absolute positions.
 */
class StreamByteWriter extends ByteWriter {
  constructor(private readonly out: Writable) {
    super(1 << 16);
  }

  flush(): Promise<void> {
    // A copy: the buffer is reused for the next row group while the stream may still hold this chunk.
    const chunk = Buffer.from(new Uint8Array(this.buffer, 0, this.index));
    this.index = 0;
    return chunk.length ? writeChunk(this.out, chunk) : Promise.resolve();
  }

  override finish(): Promise<void> {
    return this.flush();
  }
}

class ParquetSink implements RowSink {
  private readonly writer: ParquetWriter;
  private pending: ExportRow[] = [];

  constructor(
    out: Writable,
    private readonly columns: readonly ExportColumn[],
    private readonly rowGroupSize: number,
  ) {
    if (!Number.isInteger(rowGroupSize) || rowGroupSize < 1)
      throw new RangeError('row group size must be a whole number ≥ 1');
    this.writer = new ParquetWriter({
      writer: new StreamByteWriter(out),
      schema: parquetSchema(columns),
      createdBy: 'midi-corpus export',
    });
  }

  async write(rows: readonly ExportRow[]): Promise<void> {
    for (const row of rows) {
      this.pending.push(row);
      if (this.pending.length === this.rowGroupSize) await this.writeGroup();
    }
  }

  async end(): Promise<void> {
    if (this.pending.length) await this.writeGroup();
    await this.writer.finish();
  }

  private async writeGroup(): Promise<void> {
    const rows = this.pending;
    this.pending = [];
    const columnData = this.columns.map((c, i) => ({
      name: c.name,
      data: rows.map((r) => (c.type === 'int64' && r[i] !== null ? BigInt(r[i] as number) : r[i])),
    }));
    await this.writer.write({ columnData, rowGroupSize: rows.length });
  }
}
