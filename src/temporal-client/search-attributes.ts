import { temporal } from '@temporalio/proto';
import type { Connection } from '@temporalio/client';

/** Either connection type: the client's Connection or the worker's NativeConnection. */
type HasOperatorService = Pick<Connection, 'operatorService'>;
import { SEARCH_ATTRIBUTE_KEYS } from '../shared/search-attributes';

/** The archiver's custom search attributes that the namespace does not have yet. */
export async function missingSearchAttributes(
  connection: HasOperatorService,
  namespace: string,
): Promise<string[]> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  return SEARCH_ATTRIBUTE_KEYS.map((k) => k.name).filter(
    (name) => !(name in (customAttributes ?? {})),
  );
}

/**
 * Registers the missing ones. Without them, every workflow task that upserts them fails, so
 * the worker does this before it polls. Returns the names it added.
 */
export async function ensureSearchAttributes(
  connection: HasOperatorService,
  namespace: string,
): Promise<string[]> {
  const missing = await missingSearchAttributes(connection, namespace);
  if (missing.length > 0) {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(
        missing.map((name) => [
          name,
          temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        ]),
      ),
    });
  }
  return missing;
}

/** The command an operator runs when the worker may not register attributes itself. */
export function createSearchAttributeCommand(name: string, namespace: string): string {
  return `temporal operator search-attribute create --namespace ${namespace} --name ${name} --type Keyword`;
}
