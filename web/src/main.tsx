/** The explorer: executions, one execution, workflows. Served by the edge under /ui/. */
import './zodConfig.js'; // first: before any schema is made
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { apiKey, onUnauthenticated, setApiKey } from './api.js';
import { href, useRoute } from './router.js';
import { ExecutionsPage } from './pages/Executions.js';
import { ExecutionPage } from './pages/Execution.js';
import { WorkflowsPage } from './pages/Workflows.js';
import './styles.css';

function KeyForm({ onDone }: { onDone: () => void }) {
  const [value, setValue] = useState('');
  return (
    <form
      class="key-form"
      aria-labelledby="key-title"
      onSubmit={(e) => {
        e.preventDefault();
        setApiKey(value.trim() || null);
        onDone();
      }}
    >
      <h1 id="key-title">Sign in with an API key</h1>
      <p>This edge needs an API key (scope <code>read</code> to look, <code>write</code> to act). It is kept for this tab only.</p>
      <label>
        API key <input type="password" autoComplete="off" value={value} onInput={(e) => setValue(e.currentTarget.value)} required />
      </label>
      <button type="submit">Use key</button>
    </form>
  );
}

function App() {
  const route = useRoute();
  const [askKey, setAskKey] = useState(false);
  const [generation, setGeneration] = useState(0); // remounts the page once a key is given
  useEffect(() => onUnauthenticated(() => setAskKey(true)), []);
  const [section = 'executions', id] = route.parts;
  return (
    <>
      <header class="top">
        <a class="brand" href={href('executions')}>SmartSpec</a>
        <nav aria-label="Sections">
          <a href={href('executions')} aria-current={section === 'executions' ? 'page' : undefined}>Executions</a>
          <a href={href('workflows')} aria-current={section === 'workflows' ? 'page' : undefined}>Workflows</a>
        </nav>
        <span class="spacer" />
        {apiKey() ? (
          <button
            type="button"
            class="link"
            onClick={() => {
              setApiKey(null);
              setGeneration((g) => g + 1);
            }}
          >
            Forget key
          </button>
        ) : (
          <button type="button" class="link" onClick={() => setAskKey(true)}>
            Use an API key
          </button>
        )}
      </header>
      <main key={generation}>
        {askKey ? (
          <KeyForm
            onDone={() => {
              setAskKey(false);
              setGeneration((g) => g + 1);
            }}
          />
        ) : section === 'executions' && id ? (
          <ExecutionPage id={id} />
        ) : section === 'workflows' ? (
          <WorkflowsPage id={id} version={route.parts[2]} />
        ) : (
          <ExecutionsPage params={route.params} />
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
