/** The explorer's lists (executions, workflows, an event log): a caption for screen readers, column headers, rows. */
import type { ComponentChildren } from 'preact';

export function ListTable({ caption, columns, extraClass, children }: { caption: string; columns: string[]; extraClass?: string; children: ComponentChildren }) {
  return (
    <table class={extraClass ? `list ${extraClass}` : 'list'}>
      <caption class="sr-only">{caption}</caption>
      <thead>
        <tr>
          {columns.map((c) => (
            <th scope="col" key={c}>{c}</th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
}
