// Draws the identity graph of the customer page with cytoscape.js (served from its npm package).
// The nodes and edges come from the page itself (a JSON script block the server rendered, never
// evaluated as code); the table beside the drawing says the same in text.
document.addEventListener('DOMContentLoaded', () => {
  const data = document.getElementById('identity-graph-data');
  const box = document.getElementById('identity-graph');
  if (!data || !box || typeof cytoscape !== 'function') return;
  const elements = JSON.parse(data.textContent || '[]');
  // cytoscape.js puts a <style> into the head unless an element with this id is there; the page's
  // CSP refuses inline styles, and console.css gives the container the position that style would.
  if (!document.getElementById('__________cytoscape_stylesheet')) {
    const marker = document.createElement('meta');
    marker.id = '__________cytoscape_stylesheet';
    document.head.appendChild(marker);
  }
  const colours = {
    customer: '#14233c',
    card: '#0b5cad',
    device: '#7a3e9d',
    address: '#1d6b35',
    identifier: '#8a5a00',
    others: '#a4161a',
  };
  const cy = cytoscape({
    container: box,
    elements,
    style: [
      {
        selector: 'node',
        style: {
          label: 'data(label)',
          'font-size': 10,
          'text-wrap': 'wrap',
          'text-max-width': 110,
          'text-valign': 'bottom',
          'text-margin-y': 4,
          'text-background-color': '#ffffff',
          'text-background-opacity': 0.85,
          'text-background-padding': 2,
          'background-color': (n) => colours[n.data('kind')] || '#555',
          color: '#1b1f24',
        },
      },
      { selector: 'edge', style: { width: 1.5, 'line-color': '#9aa5b1', 'curve-style': 'bezier' } },
    ],
    layout: {
      name: 'concentric',
      concentric: (n) => (n.data('kind') === 'customer' ? 3 : n.data('kind') === 'others' ? 1 : 2),
      levelWidth: () => 1,
      minNodeSpacing: 70,
    },
  });
  box.dataset.nodes = String(cy.nodes().length);
  box.setAttribute('data-ready', 'true');
});
